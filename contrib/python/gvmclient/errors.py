# SPDX-License-Identifier: GPL-2.0-or-later
"""The exceptions gvmclient raises.

GvmError is an error gvmd answered; _proto.py derives one subclass per
error class of gvm-proto.h (NotFound, InUse, InvalidParams, ...), and
error_from() picks it by data.class.  Errors of the transport are the
standard library's (OSError, ConnectionError, TimeoutError); a reply that
is not JSON-RPC is ProtocolError.
"""


class GvmError(Exception):
    """An error response of gvmd, or the error a job concluded with.

    cls     the error class (data.class), e.g. "NotFound"
    message gvmd's sentence
    data    the error's data object (class, and param or errno when given)
    code    the JSON-RPC error code
    job     the JOB, when wait_job raised this for a job that failed
    """

    code = None

    def __init__(self, cls, message, data=None, code=None, job=None):
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.data = data if data is not None else {}
        if code is not None:
            self.code = code
        self.job = job

    @property
    def param(self):
        """The parameter at fault (InvalidParams), or None."""
        return self.data.get("param")

    def __str__(self):
        return "%s: %s" % (self.cls, self.message)


class ProtocolError(Exception):
    """gvmd sent something that is not a JSON-RPC 2.0 message."""


class JobTimeout(TimeoutError):
    """wait_job's timeout passed before the job concluded; .job is the
    job as last read."""

    def __init__(self, message, job):
        super().__init__(message)
        self.job = job


def error_from(err, classes, job=None):
    """The exception for an error object {"code", "message", "data"}:
    the class of classes named by data.class, else GvmError."""
    if not isinstance(err, dict):
        return ProtocolError("Malformed error object: %r" % (err,))
    data = err.get("data")
    data = data if isinstance(data, dict) else {}
    cls = data.get("class")
    if not isinstance(cls, str):
        cls = "Unknown"
    message = err.get("message")
    if not isinstance(message, str):
        message = repr(err)
    return classes.get(cls, GvmError)(cls, message, data, err.get("code"), job)
