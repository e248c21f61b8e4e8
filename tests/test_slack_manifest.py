"""slack/manifest.json is the app pressbot's code needs: its scopes are the one list in bot.slackapp."""

from __future__ import annotations

import json
import re

from bot.slackapp import METHOD_SCOPES, bot_scopes
from tests.conftest import REPO

MANIFEST = json.loads((REPO / "slack" / "manifest.json").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")
# slack-sdk's WebClient names a method chat.postMessage as chat_postMessage.
WEB_API_CALL = re.compile(r"\.((?:chat|conversations|reactions|users|views|pins|files|bookmarks)_[A-Za-z]+)\(")


def methods_called() -> set[str]:
    called = set()
    for path in (REPO / "bot").rglob("*.py"):
        called |= {name.replace("_", ".", 1) for name in WEB_API_CALL.findall(path.read_text(encoding="utf-8"))}
    return called


def test_the_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    assert MANIFEST["oauth_config"]["scopes"]["bot"] == bot_scopes()


def test_every_web_api_method_the_code_calls_has_its_scopes_listed() -> None:
    called = methods_called()
    assert {"chat.postMessage", "conversations.history"} <= called  # the scan finds calls
    assert called - set(METHOD_SCOPES) == set()


def test_the_manifest_has_socket_mode_the_slash_command_and_interactivity() -> None:
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"] is True
    assert [command["command"] for command in MANIFEST["features"]["slash_commands"]] == ["/pressbot"]
    assert MANIFEST["features"]["bot_user"]["display_name"] == "pressbot"


def test_the_readme_slack_section_starts_from_the_manifest_and_lists_the_same_scopes() -> None:
    section = README[README.index("\n## Slack\n"):]
    section = section[: section.index("\n## ", 5)]
    first = section.split("\n\n")[1]
    assert first.lower().startswith("create the app from this manifest")
    listed = re.findall(r"^\| `([a-z:]+)`(?:, `([a-z:]+)`)? \|", section, flags=re.MULTILINE)
    assert sorted(scope for row in listed for scope in row if scope) == bot_scopes()
