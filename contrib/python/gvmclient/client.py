# SPDX-License-Identifier: GPL-2.0-or-later
"""Client: gvmd's methods over one connection, job waiting, events.

    from gvmclient import Client, NotFound
    with Client("/run/gvmd/gvmd.sock") as c:
        job = c.block_pull("local:vm/top.qcow2", base=None)
        c.wait_job(job, progress=lambda j: print(j["progress"]))

Every protocol method is a method of Client (generated into _methods.py
from proto/methods.def); call() reaches any method by its wire name.
"""
import os
import time

from ._methods import Methods
from ._proto import DEFAULT_SOCKET, ERROR_CLASSES, Busy
from .connection import Connection
from .errors import JobTimeout, ProtocolError, error_from
from .events import EventStream
from .spec import OMIT


def error_for(err, job=None):
    """The typed exception of an error object of gvmd."""
    return error_from(err, ERROR_CLASSES, job)


class Client(Methods):
    def __init__(self, socket_path=None, timeout=None):
        """Connect to gvmd.  socket_path: default $GVM_SOCKET, else
        gvmd's default socket.  timeout: seconds any one wait for gvmd may
        take (None: no limit); a wait past it raises TimeoutError and
        leaves the connection unusable (close it)."""
        if socket_path is None:
            socket_path = os.environ.get("GVM_SOCKET") or DEFAULT_SOCKET
        self.socket_path = socket_path
        self.timeout = timeout
        self._conn = Connection(socket_path, timeout)

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, params=None):
        """Call a method by its wire name with a params dict (sent as
        given); returns the result or raises the error's GvmError class."""
        reply = self._conn.request(method, {} if params is None else params)
        if "error" in reply:
            raise error_for(reply["error"])
        if "result" not in reply:
            raise ProtocolError("gvmd's reply to %s has neither result nor error." % method)
        return reply["result"]

    def _invoke(self, method, params, op_id=None):
        """The generated methods' way in: unset optional parameters are
        left out, op_id becomes op-id."""
        sent = {k: v for k, v in params.items() if v is not OMIT}
        if op_id is not None:
            sent["op-id"] = op_id
        return self.call(method, sent)

    def wait_job(self, job, progress=None, timeout=None, interval=1.0, check=True):
        """Wait until a job concludes and return it (the JOB object).

        job: a JOB (as block-pull returns it) or a job id.
        progress: called with the JOB each time its state is read, first
          with the job as given (or as first read), last with the concluded
          one, so at least once.
        timeout: seconds in all (None: no limit); past it JobTimeout, with
          .job the job as last read.
        interval: the longest job-wait gvmd is asked for at a time, so
          progress is reported at least that often.
        check: a job that concluded with an error raises that error's
          GvmError class, with .job set.
        A live active commit that stops "ready" (pivot false) waits for
        job-complete: it is returned as it is.
        """
        jid = job["id"] if isinstance(job, dict) else int(job)
        current = job if isinstance(job, dict) else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if current is not None:
                if progress is not None:
                    progress(current)
                if current.get("status") in ("concluded", "ready"):
                    break
            wait = interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JobTimeout("Job %d did not conclude in %s s." % (jid, timeout),
                                     current)
                wait = min(wait, left)
            try:
                current = self.job_wait(jid, timeout=wait)
            except Busy:
                # Every worker but one waits already (PROTOCOL.md,
                # job-wait): try again shortly.
                time.sleep(min(wait, 0.2))
        if check and current.get("error"):
            raise error_for(current["error"], current)
        return current

    def events(self, timeout=None):
        """An EventStream: subscribes on a connection of its own and
        yields each EVENT.  timeout: seconds to wait for each event."""
        return EventStream(self.socket_path, timeout, error_for)
