"""What an alert looks like on the wire: the JSON event, its signature, and Slack's message.

The signature follows the scheme receivers of payment webhooks know: the header
`X-Perpetuo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` signs `"<t>." + body` with the
channel's signing secret, so a receiver checks the MAC over the exact bytes it got and
refuses old timestamps (replays). Retries are signed afresh with the same event id.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

SIGNATURE_HEADER = "x-perpetuo-signature"
EVENT_ID_HEADER = "x-perpetuo-event-id"
EVENT_TYPE_HEADER = "x-perpetuo-event"
FIRING = "alert.firing"
RESOLVED = "alert.resolved"
TEST = "alert.test"

_TITLES = {FIRING: "Alert firing", RESOLVED: "Alert resolved", TEST: "Test alert"}
_EMOJI = {FIRING: ":rotating_light:", RESOLVED: ":white_check_mark:", TEST: ":bell:"}


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event_payload(
    event_id: str,
    event_type: str,
    created_at: str,
    workspace_id: str | None,
    alert: dict[str, Any],
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON every channel is built from (the webhook body as it is)."""
    return {
        "id": event_id,
        "object": "alert_event",
        "type": event_type,
        "created_at": created_at,
        "workspace_id": workspace_id,
        "alert": alert,
        "links": links or {},
    }


def headline(payload: dict[str, Any]) -> str:
    """One line for subjects and notification previews."""
    alert = payload["alert"]
    title = _TITLES.get(payload["type"], payload["type"])
    return f"{title}: {alert['rule_name']}: {alert['summary']}"[:300]


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications, blocks for the channel."""
    alert = payload["alert"]
    kind = payload["type"]
    fields = [
        ("Rule", alert["rule_name"]),
        ("Kind", alert["kind"]),
        ("Subject", alert["subject"]),
        ("Status", alert["status"]),
    ]
    if payload.get("workspace_id"):
        fields.append(("Workspace", payload["workspace_id"]))
    if alert.get("value") is not None:
        fields.append(("Value", _number(alert["value"])))
    if alert.get("threshold") is not None:
        fields.append(("Threshold", _number(alert["threshold"])))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{_TITLES.get(kind, kind)}"[:150]},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{_EMOJI.get(kind, '')} {_escape(alert['summary'])}",
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_escape(str(value))}"}
                for name, value in fields
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{payload['id']} at {payload['created_at']}"}],
        },
    ]
    if (link := payload.get("links", {}).get("dashboard")) is not None:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the dashboard"},
                        "url": link,
                    }
                ],
            }
        )
    return {"text": _escape(headline(payload)), "blocks": blocks}


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters: names people chose are never markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: float) -> str:
    return f"{value:.4g}"
