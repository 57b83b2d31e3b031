"""The scheduler's webhook: ``POST /dags/NAME/trigger`` starts a run of DAG ``NAME``.

Why the standard library's ``http.server`` and not an ASGI stack: one endpoint,
a handful of requests a minute, and no new dependency in the scheduler's
install; ``ThreadingHTTPServer`` answers each request on its own thread and the
handler only validates and queues — the run itself happens on the scheduler.

Protection: every request needs ``Authorization: Bearer <token>``; the token
comes from the configuration (``$CRANE_WEBHOOK_TOKEN`` by default) and is
compared in constant time. The server refuses to start without one. The JSON
body (an object, optional) becomes the run's parameters::

    curl -X POST -H "Authorization: Bearer $CRANE_WEBHOOK_TOKEN" \
         -d '{"region": "eu"}' http://127.0.0.1:8787/dags/daily/trigger

Answers: 202 ``{"queued": true, "dag": …}``; 400 bad body; 401 bad token;
404 unknown DAG; 503 while the scheduler shuts down.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crane.errors import ConfigError

TOKEN_ENV = "CRANE_WEBHOOK_TOKEN"
MAX_BODY = 1 << 20  # parameters are small; refuse anything larger
_PATH = re.compile(r"^/dags/([A-Za-z0-9_][\w.-]*)/trigger/?$")

# (dag, params) -> None; raises KeyError for an unknown DAG, RuntimeError when shutting down
Submit = Callable[[str, dict[str, Any]], None]


class WebhookServer:
    """A background HTTP server on ``host:port`` (port 0: any free port, see ``port``)."""

    def __init__(self, submit: Submit, token: str, host: str = "127.0.0.1", port: int = 0):
        if not token:
            raise ConfigError(
                "the webhook needs a token",
                hint=f"set ${TOKEN_ENV} (clients send 'Authorization: Bearer <token>')",
            )
        handler = type("Handler", (_Handler,), {"submit": staticmethod(submit), "token": token})
        self.server = _Server((host, port), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name="crane-webhook", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> WebhookServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request: nothing to answer (socketserver would print)."""


class _Handler(BaseHTTPRequestHandler):
    submit: Submit
    token: str
    server_version = "crane-scheduler"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._answer(404, {"error": "expected POST /dags/NAME/trigger"})
            return
        if not self._authorized():
            self._answer(401, {"error": "missing or wrong bearer token"})
            return
        params = self._params()
        if params is None:
            return
        dag = match.group(1)
        try:
            type(self).submit(dag, params)
        except KeyError:
            self._answer(404, {"error": f"unknown DAG {dag!r}"})
            return
        except RuntimeError as error:
            self._answer(503, {"error": str(error)})
            return
        self._answer(202, {"queued": True, "dag": dag})

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.token.encode())

    def _params(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._answer(400, {"error": "bad Content-Length"})
            return None
        if length > MAX_BODY:
            self._answer(413, {"error": f"body larger than {MAX_BODY} bytes"})
            return None
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as error:
            self._answer(400, {"error": f"body is not JSON: {error}"})
            return None
        if not isinstance(body, dict):
            self._answer(400, {"error": "body must be a JSON object (the run's params)"})
            return None
        return body

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: the core never prints; the scheduler logs what it queues."""
