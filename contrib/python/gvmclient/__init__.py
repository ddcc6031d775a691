# SPDX-License-Identifier: GPL-2.0-or-later
"""gvmclient — a client of gvmd's control protocol for orchestration tools.

Standard library only.  Client has one method per protocol method
(generated from proto/methods.def), raises one exception class per error
class (NotFound, InUse, InvalidParams, ... all GvmError), waits for jobs
with a progress callback (wait_job) and iterates over events (events()).
See contrib/python/README.md and proto/PROTOCOL.md.
"""
from ._methods import METHODS
from ._proto import *  # noqa: F401,F403 — the error classes and constants
from ._proto import DEFAULT_RO_SOCKET, DEFAULT_SOCKET, ERROR_CLASSES, PROTOCOL_VERSION
from .client import Client
from .errors import GvmError, JobTimeout, ProtocolError
from .events import EventStream
from .spec import OMIT, Method, Param

__all__ = ["Client", "EventStream", "GvmError", "JobTimeout", "ProtocolError",
           "METHODS", "Method", "Param", "OMIT", "ERROR_CLASSES",
           "PROTOCOL_VERSION", "DEFAULT_SOCKET", "DEFAULT_RO_SOCKET"] + \
    sorted(ERROR_CLASSES)
