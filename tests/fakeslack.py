"""A fake Slack Web API on 127.0.0.1 for the real ``slack_sdk.WebClient`` (``base_url``).

It records every request, keeps posted messages per channel (with their metadata)
for ``conversations.history``, checks what Slack checks (token, channel, text and
block limits) and can be scripted per method: 429 with Retry-After, 5xx, an
``{"ok": false}`` error, a dropped connection, or a post accepted and then dropped.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
MESSAGE_TEXT_MAX = 40_000
BLOCKS_MAX = 50
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75


@dataclass(frozen=True)
class Action:
    """What the fake does with one call instead of answering normally."""

    kind: str  # ok, ratelimited, status, error, drop, accept_then_drop
    value: Any = None


def ok() -> Action:
    return Action("ok")


def rate_limited(retry_after: int = 1) -> Action:
    return Action("ratelimited", retry_after)


def server_error(status: int = 500) -> Action:
    return Action("status", status)


def slack_error(error: str) -> Action:
    return Action("error", error)


def drop() -> Action:
    """Close the connection without an answer; nothing is posted."""
    return Action("drop")


def accept_then_drop() -> Action:
    """Post the message, then close the connection before answering (a lost answer)."""
    return Action("accept_then_drop")


def accept_then_hang(seconds: float = 30.0) -> Action:
    """Do what was asked, then answer only after ``seconds`` (time to kill the caller)."""
    return Action("accept_then_hang", seconds)


@dataclass
class Request:
    method: str  # the API method, e.g. "chat.postMessage"
    headers: dict[str, str]
    raw: str  # the body as sent
    body: dict[str, Any]  # parsed JSON, or form and query parameters
    at: float  # time.monotonic() on arrival
    answered: str = ""  # the action taken


@dataclass
class FakeSlack:
    token: str = "xoxb-test-token"
    channels: dict[str, str] = field(
        default_factory=lambda: {"pressbot": "C0PRESSBOT", "icc": "C0ICCALERT", "reprisals": "C0REPRISAL"}
    )
    host: str = "127.0.0.1"
    port: int = 0
    socket_mode_url: str | None = None  # apps.connections.open answers it (tests.fakesocketmode)

    def __post_init__(self) -> None:
        self.requests: list[Request] = []
        self.messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels.values()}
        # Replies by (channel id, thread_ts): like Slack, not in the channel's history.
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._scripts: dict[str, deque[Action]] = {}
        self._always: dict[str, Action] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle. Stopping closes the listening socket: clients get "connection refused".
    def start(self) -> FakeSlack:
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api/"

    # Scripting.
    def script(self, method: str, *actions: Action) -> None:
        """The next calls of ``method`` get these actions, in order, then normal answers."""
        with self._lock:
            self._scripts.setdefault(method, deque()).extend(actions)

    def always(self, method: str, action: Action | None) -> None:
        """Every call of ``method`` gets ``action`` (None: back to normal)."""
        with self._lock:
            if action is None:
                self._always.pop(method, None)
            else:
                self._always[method] = action

    # Inspection.
    def calls(self, method: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.method == method]

    def posts(self) -> list[dict[str, Any]]:
        """Bodies of every chat.postMessage received, whatever the answer."""
        return [request.body for request in self.calls("chat.postMessage")]

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """Messages stored in a channel (by name or id), oldest first."""
        with self._lock:
            return list(self.messages.get(self.channel_id(channel) or "", []))

    def channel_id(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.lstrip("#"))

    # Answers.
    def next_action(self, method: str) -> Action:
        with self._lock:
            if method in self._always:
                return self._always[method]
            queue = self._scripts.get(method)
            return queue.popleft() if queue else ok()

    def new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def answer(self, request: Request) -> dict[str, Any]:
        if request.method == "apps.connections.open" and self.socket_mode_url:
            # Socket Mode opens with the app-level token, then talks over the WebSocket.
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not token.startswith("xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        handler = getattr(self, "_" + request.method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        result: dict[str, Any] = handler(request.body)
        return result

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "team": "Fake", "user": "pressbot", "bot_id": "B0PRESSBOT"}

    def _chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = self.channel_id(str(body.get("channel", "")))
        if channel_id is None:
            return {"ok": False, "error": "channel_not_found"}
        problem = message_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        message = {
            "type": "message",
            "ts": self.new_ts(),
            "text": body.get("text", ""),
            "bot_id": "B0PRESSBOT",
        }
        if body.get("blocks"):
            message["blocks"] = body["blocks"]
        if body.get("metadata"):
            message["metadata"] = body["metadata"]
        thread_ts = body.get("thread_ts")
        with self._lock:
            if thread_ts:
                if not any(m["ts"] == thread_ts for m in self.messages[channel_id]):
                    return {"ok": False, "error": "thread_not_found"}
                message["thread_ts"] = thread_ts
                self.threads.setdefault((channel_id, str(thread_ts)), []).append(message)
            else:
                self.messages[channel_id].append(message)
        return {"ok": True, "channel": channel_id, "ts": message["ts"], "message": message}

    def _chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(body.get("channel", ""))
        if channel_id not in self.messages:  # chat.update takes no channel names
            return {"ok": False, "error": "channel_not_found"}
        problem = message_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        with self._lock:
            for message in self.messages[channel_id]:
                if message["ts"] == body.get("ts"):
                    message["text"] = body.get("text", "")
                    for key in ("blocks", "metadata"):
                        if body.get(key):
                            message[key] = body[key]
                    message["edited"] = {"ts": self.new_ts()}
                    return {"ok": True, "channel": channel_id, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def _conversations_replies(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id, ts = str(body.get("channel", "")), str(body.get("ts", ""))
        if channel_id not in self.messages:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            parent = [dict(m) for m in self.messages[channel_id] if m["ts"] == ts]
            if not parent:
                return {"ok": False, "error": "thread_not_found"}
            found = parent + [dict(m) for m in self.threads.get((channel_id, ts), [])]
        if str(body.get("include_all_metadata", "")).lower() not in ("1", "true"):
            for message in found:
                message.pop("metadata", None)
        return _page(found, body, "messages")

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in one thread, oldest first."""
        with self._lock:
            return list(self.threads.get((self.channel_id(channel) or "", ts), []))

    def _conversations_list(self, body: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name, "is_archived": False} for name, cid in self.channels.items()]
        return _page(channels, body, "channels")

    def _conversations_history(self, body: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(body.get("channel", ""))
        if channel_id not in self.messages:  # Slack wants an id here, not a name
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(body.get("oldest") or 0)
        latest = float(body.get("latest") or "inf")
        inclusive = str(body.get("inclusive", "")).lower() in ("1", "true")
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")

        def within(ts: float) -> bool:
            return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

        with self._lock:
            found = [dict(m) for m in reversed(self.messages[channel_id]) if within(float(m["ts"]))]
        if not with_metadata:
            for message in found:
                message.pop("metadata", None)
        return _page(found, body, "messages")


def _page(items: list[dict[str, Any]], body: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(body.get("cursor") or 0)
    limit = int(body.get("limit") or 100)
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    result: dict[str, Any] = {"ok": True, key: chunk, "has_more": more}
    result["response_metadata"] = {"next_cursor": str(start + limit) if more else ""}
    return result


def message_problem(body: dict[str, Any]) -> str | None:
    """The error Slack would give for this chat.postMessage body, or None."""
    text, blocks = body.get("text"), body.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text and len(text) > MESSAGE_TEXT_MAX:
        return "msg_too_long"
    if blocks is not None and not _blocks_ok(blocks):
        return "invalid_blocks"
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        return "invalid_metadata_format"
    return None


def _text_ok(obj: Any, limit: int, types: tuple[str, ...] = ("mrkdwn", "plain_text")) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in types
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def _blocks_ok(blocks: Any) -> bool:
    if not isinstance(blocks, list) or not 0 < len(blocks) <= BLOCKS_MAX:
        return False
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "section":
            fine = _text_ok(block.get("text"), SECTION_TEXT_MAX)
        elif kind == "header":
            fine = _text_ok(block.get("text"), HEADER_TEXT_MAX, ("plain_text",))
        elif kind == "context":
            elements = block.get("elements")
            fine = isinstance(elements, list) and 0 < len(elements) <= CONTEXT_ELEMENTS_MAX
            fine = fine and all(_text_ok(element, SECTION_TEXT_MAX) for element in elements)
        elif kind == "actions":
            elements = block.get("elements")
            fine = isinstance(elements, list) and 0 < len(elements) <= ACTIONS_ELEMENTS_MAX
            fine = fine and all(_action_ok(element) for element in elements)
        else:
            fine = kind == "divider"
        if not fine:
            return False
    return True


def _action_ok(element: Any) -> bool:
    """A button or an overflow menu as Block Kit defines them (text, action_id and value limits)."""
    if not isinstance(element, dict) or not 0 < len(str(element.get("action_id") or "")) <= 255:
        return False
    if element.get("type") == "button":
        return _text_ok(element.get("text"), BUTTON_TEXT_MAX, ("plain_text",)) and len(
            str(element.get("value") or "")) <= 2000
    if element.get("type") == "overflow":
        options = element.get("options")
        return isinstance(options, list) and 2 <= len(options) <= 5 and all(
            isinstance(option, dict) and _text_ok(option.get("text"), BUTTON_TEXT_MAX, ("plain_text",))
            and 0 < len(str(option.get("value") or "")) <= 150
            for option in options
        )
    return False


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            request = self._read()
            with fake._lock:
                fake.requests.append(request)
            action = fake.next_action(request.method)
            request.answered = action.kind
            if action.kind == "drop":
                self.close_connection = True
                return
            if action.kind == "accept_then_drop":
                fake.answer(request)
                self.close_connection = True
                return
            if action.kind == "accept_then_hang":
                answer = fake.answer(request)
                time.sleep(action.value)
                self._send(200, answer)
                return
            if action.kind == "ratelimited":
                body = {"ok": False, "error": "ratelimited"}
                self._send(429, body, {"Retry-After": str(action.value)})
            elif action.kind == "status":
                self._send(action.value, None)
            elif action.kind == "error":
                self._send(200, {"ok": False, "error": action.value})
            else:
                self._send(200, fake.answer(request))

        def _read(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            parts = urlsplit(self.path)
            body: dict[str, Any] = dict(parse_qsl(parts.query))
            if "json" in (self.headers.get("Content-Type") or ""):
                body.update(json.loads(raw or "{}"))
            else:
                body.update(parse_qsl(raw))
            method = parts.path.rsplit("/", 1)[-1]
            headers = {key.lower(): value for key, value in self.headers.items()}
            return Request(method, headers, raw, body, time.monotonic())

        def _send(
            self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
        ) -> None:
            payload = json.dumps(body).encode() if body is not None else b"<html>upstream error</html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8" if body else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler
