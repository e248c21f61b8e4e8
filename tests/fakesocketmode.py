"""A fake Slack for Socket Mode on 127.0.0.1: the Web API calls and the WebSocket.

Modelled on slack-sdk's own tests (tests/slack_sdk/socket_mode/: a mock Web API
server answering apps.connections.open with a ws:// URL, and a WebSocket server that
says hello and pushes envelopes), with the websockets library instead of
Flask-Sockets/gevent. The real ``SocketModeClient`` connects to it.

    HTTP  POST /api/apps.connections.open   → {"ok": true, "url": "ws://127.0.0.1:<port>/link"}
          POST /api/chat.postEphemeral      → recorded in ``ephemeral``
          POST /commands/<n>                → a slash command's response_url; recorded in ``responses``
    WS    /link                             → hello, then envelopes from ``send_slash_command``;
                                              the client's acks are recorded in ``acks``
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

HELLO = {
    "type": "hello",
    "num_connections": 1,
    "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
    "connection_info": {"app_id": "A111"},
}


class FakeSocketModeSlack:
    def __init__(self) -> None:
        self.opened: list[str] = []  # the bearer token of each apps.connections.open
        self.refuse_opens = 0  # answer this many apps.connections.open with invalid_auth first
        self.ephemeral: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []
        self.sent_at: dict[str, float] = {}  # envelope id → when it was pushed (monotonic)
        self.acked_at: dict[str, float] = {}  # envelope id → when its first ack arrived
        self._connections: list[ServerConnection] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._http_handler())
        self._http.daemon_threads = True
        self._ws: Server = serve(self._link, "127.0.0.1", 0, compression=None)
        self._threads = [
            threading.Thread(target=self._http.serve_forever, daemon=True),
            threading.Thread(target=self._ws.serve_forever, daemon=True),
        ]

    def start(self) -> FakeSocketModeSlack:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._ws.shutdown()
        self._http.shutdown()
        self._http.server_close()

    @property
    def base(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    @property
    def ws_url(self) -> str:
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link"

    def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("the fake Slack waited in vain")

    def send_slash_command(self, text: str, *, response_url: bool = True) -> str:
        """Push a ``/pressbot text`` envelope to the connected client; returns its envelope id."""
        connection = self.wait_for(lambda: self._connections[-1] if self._connections else None)
        envelope_id = str(uuid.uuid4())
        payload = {
            "token": "verification-token",
            "team_id": "T111",
            "team_domain": "ngo",
            "channel_id": "C111",
            "channel_name": "research",
            "user_id": "U111",
            "user_name": "advocate",
            "command": "/pressbot",
            "text": text,
            "api_app_id": "A111",
            "trigger_id": "111.222.xxx",
        }
        if response_url:
            payload["response_url"] = f"{self.base}/commands/{len(self.responses) + 1}"
        envelope = {"envelope_id": envelope_id, "type": "slash_commands", "accepts_response_payload": True,
                    "payload": payload}
        connection.send(json.dumps(envelope))
        return envelope_id

    def send_envelope(self, kind: str, payload: dict[str, Any], envelope_id: str | None = None) -> str:
        """Push one envelope (``interactive``, ``slash_commands``…); the same ``envelope_id`` is a retry."""
        connection = self.wait_for(lambda: self._connections[-1] if self._connections else None)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "accepts_response_payload": False,
                                    "payload": payload}
        with self._lock:
            self.sent_at[envelope_id] = time.monotonic()
        connection.send(json.dumps(envelope))
        return envelope_id

    def block_actions(
        self, *, action_id: str, channel_id: str, message_ts: str, value: str = "", user_id: str = "U0ANA",
        action_ts: str = "1700000100.000001", selected: str | None = None,
    ) -> dict[str, Any]:
        """A block_actions payload as Slack sends a click on a message's button or overflow."""
        action: dict[str, Any] = {"action_id": action_id, "block_id": "pressbot_alert_actions",
                                  "type": "overflow" if selected else "button", "action_ts": action_ts}
        if selected:
            action["selected_option"] = {"text": {"type": "plain_text", "text": selected}, "value": selected}
        else:
            action.update(value=value, text={"type": "plain_text", "text": action_id})
        return {
            "type": "block_actions",
            "user": {"id": user_id, "username": "ana", "team_id": "T111"},
            "api_app_id": "A111",
            "team": {"id": "T111", "domain": "ngo"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                          "is_ephemeral": False},
            "channel": {"id": channel_id, "name": "pressbot"},
            "message": {"type": "message", "ts": message_ts, "bot_id": "B0PRESSBOT"},
            "response_url": f"{self.base}/commands/action-{len(self.sent_at)}",
            "trigger_id": "111.222.xxx",
            "actions": [action],
        }

    def ack_seconds(self, envelope_id: str) -> float | None:
        """How long the client took to acknowledge the envelope (None: not yet)."""
        with self._lock:
            acked = self.acked_at.get(envelope_id)
            return None if acked is None else acked - self.sent_at[envelope_id]

    def _link(self, connection: ServerConnection) -> None:
        with self._lock:
            self._connections.append(connection)
        connection.send(json.dumps(HELLO))
        try:
            for message in connection:
                ack = json.loads(message)
                with self._lock:
                    self.acks.append(ack)
                    self.acked_at.setdefault(str(ack.get("envelope_id")), time.monotonic())
        except ConnectionClosed:
            pass  # slack-sdk's builtin client drops the socket without a close frame

    def _http_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> dict[str, Any]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    return dict(json.loads(raw or "{}"))
                return {key: values[0] for key, values in parse_qs(raw).items()}

            def _answer(self, status: int, body: dict[str, Any] | str) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self._body()
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if self.path == "/api/apps.connections.open":
                    fake.opened.append(token)
                    if not token.startswith("xapp-"):
                        self._answer(200, {"ok": False, "error": "not_allowed_token_type"})
                        return
                    if len(fake.opened) <= fake.refuse_opens:
                        self._answer(200, {"ok": False, "error": "invalid_auth"})
                        return
                    self._answer(200, {"ok": True, "url": fake.ws_url})
                elif self.path == "/api/chat.postEphemeral":
                    fake.ephemeral.append(body)
                    self._answer(200, {"ok": True, "message_ts": "1700000000.000100"})
                elif self.path.startswith("/commands/"):
                    fake.responses.append(body)
                    self._answer(200, "ok")  # hooks.slack.com answers response_url posts in plain text
                else:
                    self._answer(404, {"ok": False, "error": "unknown_method"})

        return Handler
