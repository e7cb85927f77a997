"""The service's JSON HTTP face: `POST /api/TOOL` with `Authorization: Bearer TOKEN` and the tool's
arguments as a JSON object; the answer is the tool's JSON, or `{"error": "one line"}` with a status
(400 bad call, 401 token, 404 unknown, 413 too large, 429 budget). `GET /api/health` needs no token and
says only that the service is up. Loopback by default; plain HTTP, so put TLS in front of it before it
leaves the machine.

`HttpClient` is the other end, used by the MCP face when it runs beside an agent (stdio).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .engine import Service, ToolError


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    limit = 2 * service.campaign.max_code_bytes + 64 * 1024

    class Handler(BaseHTTPRequestHandler):
        server_version = "w2sbench-serve"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # the service's own log has every call
            pass

        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/api/health":
                self._send(200, {"ok": True, "campaign": service.campaign.name})
            else:
                self._send(404, {"error": "POST /api/TOOL with a bearer token; GET /api/health"})

        def do_POST(self) -> None:
            if not self.path.startswith("/api/"):
                return self._send(404, {"error": "POST /api/TOOL"})
            tool = self.path[len("/api/") :]
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return self._send(400, {"error": "bad Content-Length"})
            if length > limit:
                if length <= 16 * limit:  # read and dropped, so that the client hears the answer, not a reset
                    self.rfile.read(length)
                self.close_connection = True
                return self._send(413, {"error": f"the request is over {limit} bytes"})
            try:
                args = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self._send(400, {"error": "the body is not JSON"})
            if not isinstance(args, dict):
                return self._send(400, {"error": "the body must be a JSON object of the tool's arguments"})
            try:
                self._send(200, service.call(token, tool, args))
            except ToolError as e:
                self._send(e.status, {"error": str(e)})
            except Exception as e:  # never the harness's text: the log has it
                service.state.log("http_error", tool=tool, error=f"{type(e).__name__}: {e}")
                self._send(500, {"error": "the service failed on this call (the operator's log says why)"})

    return ThreadingHTTPServer((host, port), Handler)


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
