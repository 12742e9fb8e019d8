"""The Slack app as ``build_app`` makes it, before it connects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest


async def test_an_unsigned_http_request_is_refused_and_socket_mode_needs_no_signature(
    slack_app: tuple[Any, Any, set[str]],
) -> None:
    """Socket Mode requests come over the app's own authenticated socket; a request over HTTP must carry Slack's
    signature (bolt refuses it outright without a signing secret, as Docent has none), so the app is never open
    to anyone who finds its URL."""
    app, slack, _ = slack_app
    event = {"type": "assistant_thread_context_changed", "assistant_thread": {}, "event_ts": "1.2"}
    body = json.dumps({"type": "event_callback", "team_id": slack.team_id, "event": event, "event_id": "Ev1"})
    headers: dict[str, str | Sequence[str]] = {"content-type": ["application/json"]}
    over_http = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
    assert over_http.status in (401, 500), "refused: unsigned, or no signing secret to check it with"
    over_the_socket = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers, mode="socket_mode"))
    assert over_the_socket.status == 200
