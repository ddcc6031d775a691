# SPDX-License-Identifier: GPL-2.0-or-later
"""One connection to gvmd: framing, request ids, notifications.

PROTOCOL.md §2-3: each message is one JSON text and a newline; replies are
matched to requests by id; a message without an id that names a method is
a notification (events), queued until asked for.  A Connection sends one
request at a time and waits for its reply, so replies cannot overtake each
other; it is not thread-safe: give each thread its own.
"""
import collections
import json
import socket

from .errors import ProtocolError

_READ = 65536


class Connection:
    def __init__(self, path, timeout=None):
        """Connect to the unix socket at path.  timeout (seconds, None:
        none) bounds each wait for gvmd; past it socket.timeout (a
        TimeoutError) is raised and the connection should be closed."""
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(path)
        except BaseException:
            self._sock.close()
            raise
        self._timeout = timeout
        self._buf = b""
        self._next_id = 1
        self._notifications = collections.deque()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def closed(self):
        return self._sock is None

    def request(self, method, params):
        """Send a request and return its response object (with "result" or
        "error"); notifications that come first are queued."""
        rid = self._next_id
        self._next_id += 1
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            msg = self._read_message(self._timeout)
            if self._queue_notification(msg):
                continue
            # One request is outstanding at a time, so a reply with id null
            # (an error about no request in particular, as the connection
            # caps' Busy) is about this one.
            if msg.get("id") in (rid, None):
                return msg
            raise ProtocolError("gvmd answered request %r, not %d: %.200r"
                                % (msg.get("id"), rid, msg))

    def notification(self, timeout):
        """The next notification, waiting up to timeout seconds (None:
        for ever); None when gvmd closed the connection."""
        while not self._notifications:
            msg = self._read_message(timeout)
            if msg is None:
                return None
            if not self._queue_notification(msg):
                raise ProtocolError("gvmd sent a reply nobody asked for: %.200r" % (msg,))
        return self._notifications.popleft()

    def _send(self, msg):
        if self._sock is None:
            raise ConnectionError("The connection to gvmd at %s is closed." % self.path)
        data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
        self._sock.sendall(data.encode("utf-8") + b"\n")

    def _queue_notification(self, msg):
        """True if msg is a notification (now queued); False for a response."""
        if msg is None:
            raise ConnectionError("gvmd at %s closed the connection." % self.path)
        if not isinstance(msg, dict):
            raise ProtocolError("gvmd sent a message that is not an object: %.200r" % (msg,))
        if "method" in msg and "id" not in msg:
            self._notifications.append(msg)
            return True
        if "id" in msg and ("result" in msg or "error" in msg):
            return False
        raise ProtocolError("gvmd sent an unexpected message: %.200r" % (msg,))

    def _read_message(self, timeout):
        """The next JSON message, or None at end of stream."""
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if sep:
                self._buf = rest
                line = line.rstrip(b"\r")
                if not line.strip():
                    continue
                try:
                    return json.loads(line.decode("utf-8"))
                except ValueError as e:
                    raise ProtocolError("gvmd sent a line that is not JSON (%s): %.200r"
                                        % (e, line)) from None
            if self._sock is None:
                raise ConnectionError("The connection to gvmd at %s is closed." % self.path)
            self._sock.settimeout(timeout)
            try:
                chunk = self._sock.recv(_READ)
            finally:
                self._sock.settimeout(self._timeout)
            if not chunk:
                return None
            self._buf += chunk
