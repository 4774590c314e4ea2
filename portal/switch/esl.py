"""A small client of FreeSWITCH's inbound event socket (mod_event_socket).

Protocol: the switch greets with `Content-Type: auth/request`; the client sends
`auth <password>` and gets a `command/reply` whose Reply-Text starts with +OK; then
each `api <command>` is answered by an `api/response` whose body is Content-Length
bytes. Every message is header lines ending with an empty line. One connection per
action keeps it simple; the portal does not subscribe to events.
"""
from __future__ import annotations

import socket


class EslError(RuntimeError):
    """The switch could not be reached, refused us, or answered nonsense."""


class EslClient:
    def __init__(self, host: str, port: int = 8021, password: str = "ClueCon", timeout: float = 3.0):
        self.host, self.port, self.password, self.timeout = host, port, password, timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    # -- framing
    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EslError("the switch closed the connection")
            self._buffer += chunk
        data, _, self._buffer = self._buffer.partition(marker)
        return data

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EslError("the switch closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def read_message(self) -> tuple[dict[str, str], str]:
        raw = self._read_until(b"\n\n").decode("utf-8", "replace")
        headers = {}
        for line in raw.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        body = ""
        if "Content-Length" in headers:
            try:
                length = int(headers["Content-Length"])
            except ValueError:
                raise EslError("bad Content-Length from the switch") from None
            body = self._read_exactly(length).decode("utf-8", "replace")
        return headers, body

    def _send(self, line: str) -> None:
        if "\n" in line or "\r" in line:
            raise EslError("a command is one line")
        self._sock.sendall(line.encode() + b"\n\n")

    # -- session
    def connect(self) -> "EslClient":
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            headers, _ = self.read_message()
            if headers.get("Content-Type") != "auth/request":
                raise EslError(f"not an event socket (got {headers.get('Content-Type')!r})")
            self._send(f"auth {self.password}")
            headers, _ = self._reply()
            if not headers.get("Reply-Text", "").startswith("+OK"):
                raise EslError("the switch refused the event socket password")
        except OSError as e:
            self.close()
            raise EslError(f"cannot reach the switch at {self.host}:{self.port}: {e.strerror or e}") from None
        except EslError:
            self.close()
            raise
        return self

    def _reply(self) -> tuple[dict[str, str], str]:
        while True:
            headers, body = self.read_message()
            kind = headers.get("Content-Type")
            if kind == "text/disconnect-notice":
                raise EslError("the switch disconnected us")
            if kind in ("command/reply", "api/response"):
                return headers, body

    def api(self, command: str) -> str:
        """Run one API command; returns its output text."""
        if self._sock is None:
            raise EslError("not connected")
        try:
            self._send(f"api {command}")
            _, body = self._reply()
        except OSError as e:
            raise EslError(f"the switch stopped answering: {e}") from None
        return body

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.sendall(b"exit\n\n")
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "EslClient":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()
