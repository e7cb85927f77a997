"""The service's JSON HTTP face: `POST /api/TOOL` with `Authorization: Bearer TOKEN` and the tool's
arguments as a JSON object; the answer is the tool's JSON, or `{"error": "one line"}` with a status
(400 bad call, 401 token, 404 unknown, 408 body too slow, 411 no Content-Length, 413 too large, 429 budget
or too many calls at once, 503 too many connections). `GET /api/health` needs no token and says only that
the service is up. Loopback by default; plain HTTP, so put TLS in front of it before it leaves the machine.

Every request that is refused is in the service's log with why, and never holds a thread for long: the
headers must come within HEADER_SECONDS (else the connection is closed) and the body whole within
BODY_SECONDS (each read within READ_SECONDS), at most MAX_CONNECTIONS requests are served at once, and
each agent may have `calls_per_agent` calls open (the campaign's).

`HttpClient` is the other end, used by the MCP face when it runs beside an agent (stdio).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .engine import Service, ToolError

READ_SECONDS = 10.0  # the most one read of a request may wait
HEADER_SECONDS = 10.0  # the most the request line and headers may take to arrive, all together
BODY_SECONDS = 30.0  # the most a whole body may take to arrive
MAX_CONNECTIONS = 64


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, service: Service):
        self.service = service
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.per_agent: dict[str, threading.BoundedSemaphore] = {}
        self.per_agent_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):  # answered here, in one write, and closed
            try:
                request.settimeout(1.0)
                body = json.dumps({"error": "too many connections at once; try again"}).encode()
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass
            self.service.state.log("refused", reason="too many connections", client=client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def agent_slot(self, name: str) -> threading.BoundedSemaphore:
        with self.per_agent_lock:
            if name not in self.per_agent:
                self.per_agent[name] = threading.BoundedSemaphore(self.service.campaign.calls_per_agent)
            return self.per_agent[name]


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    limit = 2 * service.campaign.max_code_bytes + 64 * 1024

    class Handler(BaseHTTPRequestHandler):
        server_version = "w2sbench-serve"
        sys_version = ""
        timeout = READ_SECONDS  # each read of the request line, headers and body

        def log_message(self, format: str, *args: Any) -> None:  # the service's own log has every call
            pass

        def setup(self) -> None:
            super().setup()
            self.headers_in = False
            self.timer = threading.Timer(HEADER_SECONDS, self._headers_late)
            self.timer.daemon = True
            self.timer.start()

        def _headers_late(self) -> None:
            if not self.headers_in:  # a request trickled in a byte at a time: the connection is closed
                service.state.log(
                    "refused",
                    reason=f"the request's headers did not arrive within {HEADER_SECONDS:g} s",
                    client=self.client_address[0],
                )
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def finish(self) -> None:
            self.timer.cancel()
            super().finish()

        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client went away: nothing to answer
                self.close_connection = True

        def _refuse(self, status: int, message: str, **fields: Any) -> None:
            service.state.log("refused", reason=message, status=status, client=self.client_address[0], **fields)
            self.close_connection = True
            self._send(status, {"error": message})

        def do_GET(self) -> None:
            self.headers_in = True
            if self.path == "/api/health":
                self._send(200, {"ok": True, "campaign": service.campaign.name})
            else:
                self._send(404, {"error": "POST /api/TOOL with a bearer token; GET /api/health"})

        def _body(self) -> bytes:
            """The body, whole, within BODY_SECONDS; refused when its length is missing, malformed, negative
            or over the limit (read and dropped up to 16x the limit, so that the client hears the answer)."""
            if self.headers.get("Transfer-Encoding"):
                raise _Refused(411, "send the body with a Content-Length, not chunked")
            text = self.headers.get("Content-Length")
            if text is None:
                raise _Refused(411, "a Content-Length header is required")
            if not text.strip().isdigit():
                raise _Refused(400, "bad Content-Length (a whole number of bytes >= 0)")
            length = int(text)
            deadline = time.monotonic() + BODY_SECONDS
            if length > limit:
                if length <= 16 * limit:
                    self._read(length, deadline, keep=False)
                raise _Refused(413, f"the request is over {limit} bytes")
            return self._read(length, deadline, keep=True)

        def _read(self, length: int, deadline: float, keep: bool) -> bytes:
            chunks, got = [], 0
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Refused(408, f"the body did not arrive within {BODY_SECONDS:g} s")
                self.connection.settimeout(min(READ_SECONDS, left))
                try:
                    chunk = self.rfile.read1(min(1 << 16, length - got))
                except TimeoutError:
                    raise _Refused(408, f"the body did not arrive within {BODY_SECONDS:g} s") from None
                if not chunk:
                    raise _Refused(400, "the body ended before its Content-Length")
                got += len(chunk)
                if keep:
                    chunks.append(chunk)
            self.connection.settimeout(READ_SECONDS)
            return b"".join(chunks)

        def do_POST(self) -> None:
            self.headers_in = True
            if not self.path.startswith("/api/"):
                return self._refuse(404, "POST /api/TOOL")
            tool = self.path[len("/api/") :][:64]
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            agent = service.campaign.agent_for(token)
            slot = server.agent_slot(agent.name if agent else "")
            if not slot.acquire(blocking=False):
                return self._refuse(429, "too many calls at once for this token", agent=agent and agent.name)
            try:
                try:
                    body = self._body()
                    try:
                        args = json.loads(body or b"{}")
                    except (ValueError, RecursionError):
                        raise _Refused(400, "the body is not JSON (or is nested too deep)") from None
                    if not isinstance(args, dict):
                        raise _Refused(400, "the body must be a JSON object of the tool's arguments")
                except _Refused as e:
                    return self._refuse(e.status, str(e), agent=agent and agent.name, tool=tool)
                try:
                    self._send(200, service.call(token, tool, args))
                except ToolError as e:  # the service logged it
                    self._send(e.status, {"error": str(e)})
                except Exception as e:  # never the harness's text: the log has it
                    service.state.log("http_error", tool=tool, error=f"{type(e).__name__}: {e}")
                    self._send(500, {"error": "the service failed on this call (the operator's log says why)"})
            finally:
                slot.release()

    server = _Server((host, port), Handler, service)
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="w2sbench-serve-http", daemon=True)
    thread.start()
    return thread


class HttpClient:
    """Calls a running service's tools over HTTP; a refusal is a ToolError with the service's line."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, tool: str, arguments: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/{tool}",
            data=json.dumps(arguments or {}).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", str(e))
            except ValueError:
                message = str(e)
            raise ToolError(message, e.code) from None


class LocalClient:
    """The same calls straight into a Service in this process (tests, and the MCP face inside the service)."""

    def __init__(self, service: Service, token: str):
        self.service, self.token = service, token

    def call(self, tool: str, arguments: dict | None = None) -> dict:
        return self.service.call(self.token, tool, arguments)
