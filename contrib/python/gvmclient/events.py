# SPDX-License-Identifier: GPL-2.0-or-later
"""Events as an iterator, on a connection of their own.

events-subscribe turns the connection it is called on into an event feed
(PROTOCOL.md, events-subscribe): the notifications would arrive between
the replies of any other call made there, so EventStream opens its own
connection and makes no other call on it.
"""
import socket

from .connection import Connection


class EventStream:
    """Iterate over EVENT objects ({"event": "job-status-change", "job":
    JOB}) in the order they happened.

    timeout: seconds to wait for the next event (None: for ever); past it
    the iteration raises TimeoutError.  The iteration ends when gvmd closes
    the connection (it shuts down).  Use as a context manager, or close().
    """

    def __init__(self, socket_path, timeout, error_for):
        self.timeout = timeout
        self._conn = Connection(socket_path, timeout)
        try:
            reply = self._conn.request("events-subscribe", {})
            if "error" in reply:
                raise error_for(reply["error"])
        except BaseException:
            self._conn.close()
            raise

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._conn.closed:
                raise StopIteration
            try:
                msg = self._conn.notification(self.timeout)
            except socket.timeout:
                raise TimeoutError("No event from gvmd at %s in %s s."
                                   % (self._conn.path, self.timeout)) from None
            if msg is None:
                self.close()
                raise StopIteration
            if msg.get("method") == "event" and isinstance(msg.get("params"), dict):
                return msg["params"]

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
