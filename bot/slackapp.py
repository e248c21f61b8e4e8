"""The Slack app pressbot is: the bot scopes it needs, by the Web API method or feature that needs each.

This is the one list: ``slack/manifest.json`` (what a workspace admin pastes into
"Create an app → From a manifest") and the README's scope table are checked against it
(tests/test_slack_manifest.py), and a test fails when the code calls a Web API method
that is not listed here. Each organisation installs its own copy of the app: Slack
limits ``conversations.history``, which crash recovery reads, to one request a minute
for non-Marketplace apps distributed to other workspaces, but not for a workspace's own.
"""

from __future__ import annotations

# Web API method → the bot scopes it needs (api.slack.com/methods/<method>).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),  # alerts, health notices, `pressbot slack test`
    "chat.postEphemeral": ("chat:write",),  # /pressbot answers only whoever asked
    "chat.update": ("chat:write",),  # a grouped copy or a verdict edits the alert
    # Find a channel's id from its #name, public or private, for the history look-up.
    "conversations.list": ("channels:read", "groups:read"),
    # After a crash or a lost answer, look for an alert in the channel before posting it again.
    "conversations.history": ("channels:history", "groups:history"),
    # After a crash or a lost answer, look for an update's reply in the alert's thread.
    "conversations.replies": ("channels:history", "groups:history"),
}
# Features that need a scope of their own.
FEATURE_SCOPES: dict[str, tuple[str, ...]] = {
    "/pressbot slash command": ("commands",),
}


def bot_scopes() -> list[str]:
    """Every bot token scope pressbot needs, sorted."""
    needed = {scope for scopes in (*METHOD_SCOPES.values(), *FEATURE_SCOPES.values()) for scope in scopes}
    return sorted(needed)
