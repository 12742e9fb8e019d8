"""The learned command in Slack: this workspace's community answers waiting for approval, only to the admin who
asked, each with Approve, Edit (a modal with the answer to correct, then approved) and Reject. Nothing is learned
without approval; a decision re-indexes the community answers at once."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack.admin import ADMINS_ONLY, is_admin
from bot.slack.render import escape, link
from rag.learned import Learned

logger = logging.getLogger(__name__)
APPROVE, EDIT, REJECT = "docent_learned_approve", "docent_learned_edit", "docent_learned_reject"
EDIT_VIEW = "docent_learned_edit_view"
SHOWN = 10  # pairs per listing: 3 blocks each stays far under Slack's 50


def pair_blocks(pair: Learned) -> list[dict[str, Any]]:
    text = (
        f"*#{pair.id}* by @{escape(pair.author)} — {link(pair.link, 'message')}\n"
        f"*Q:* {escape(pair.question)}\n*A:* {escape(pair.answer)}"
    )
    labels = ((APPROVE, "✅ Approve"), (EDIT, "✏️ Edit"), (REJECT, "🗑️ Reject"))
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": action, "value": str(pair.id), "text": {"type": "plain_text", "text": label}}
        for action, label in labels
    ]
    buttons[-1]["style"] = "danger"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2990]}},
        {"type": "actions", "elements": buttons},
        {"type": "divider"},
    ]


class SlackLearned:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def _admin(self, client: AsyncWebClient, user: str) -> bool:
        return await is_admin(client, user, self.services.settings.slack.admin_user_ids)

    async def _mine(self, pair_id: str, team: str) -> Learned | None:
        pair = await self.services.learned.get(int(pair_id)) if pair_id.isdigit() else None
        return pair if pair is not None and pair.platform == "slack" and pair.space == team else None

    async def on_command(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        if not await self._admin(client, str(body.get("user_id"))):
            await respond(text=ADMINS_ONLY.format(action="see what Docent may learn"), response_type="ephemeral")
            return
        team = str(body.get("team_id") or "")
        pairs = await self.services.learned.list("pending", platform="slack", space=team)
        if not pairs:
            await respond(text="Nothing waiting for approval.", response_type="ephemeral")
            return
        more = f" (showing {SHOWN})" if len(pairs) > SHOWN else ""
        header = f"{len(pairs)} community answers wait for approval{more}."
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
        for pair in pairs[:SHOWN]:
            blocks += pair_blocks(pair)
        await respond(text=header, blocks=blocks, response_type="ephemeral")

    async def on_decide(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        action = (body.get("actions") or [{}])[0]
        if not await self._admin(client, user):
            await respond(text=ADMINS_ONLY.format(action="decide what Docent learns"), replace_original=False)
            return
        pair = await self._mine(str(action.get("value") or ""), str((body.get("team") or {}).get("id") or ""))
        if pair is None:
            await respond(text="That answer is gone.", replace_original=False)
            return
        if action.get("action_id") == EDIT:
            await client.views_open(trigger_id=str(body.get("trigger_id")), view=self._edit_view(pair, body))
            return
        approved = action.get("action_id") == APPROVE
        await self._decide(pair, approved, user)
        verdict = "✅ Approved: Docent can cite it now." if approved else "🗑️ Rejected: never used."
        await respond(text=f"#{pair.id} {verdict}", replace_original=False)

    def _edit_view(self, pair: Learned, body: dict[str, Any]) -> dict[str, Any]:
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
        return {
            "type": "modal",
            "callback_id": EDIT_VIEW,
            "private_metadata": json.dumps({"id": pair.id, "channel": channel}),
            "title": {"type": "plain_text", "text": "Edit, then approve"},
            "submit": {"type": "plain_text", "text": "Approve"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "answer",
                    "label": {"type": "plain_text", "text": "Answer"},
                    "element": {
                        "type": "plain_text_input",
                        "action_id": "text",
                        "multiline": True,
                        "initial_value": pair.answer[:3000],
                    },
                }
            ],
        }

    async def on_edit_submitted(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        view = body.get("view") or {}
        meta = json.loads(view.get("private_metadata") or "{}")
        pair = await self._mine(str(meta.get("id", "")), str((body.get("team") or {}).get("id") or ""))
        if pair is None or not await self._admin(client, user):
            return
        values = (view.get("state") or {}).get("values") or {}
        edited = str(((values.get("answer") or {}).get("text") or {}).get("value") or "").strip()
        await self._decide(pair, True, user, answer=edited or pair.answer)
        if meta.get("channel"):
            try:
                await client.chat_postEphemeral(
                    channel=str(meta["channel"]), user=user, text=f"#{pair.id} ✅ Approved with your edit."
                )
            except Exception as exc:
                logger.info("slack: could not confirm an edit: %s", exc)

    async def _decide(self, pair: Learned, approved: bool, user: str, *, answer: str | None = None) -> None:
        await self.services.learned.decide(pair.id, "approved" if approved else "rejected", answer=answer)
        logger.info("community answer %d %s by %s", pair.id, "approved" if approved else "rejected", user)
        self.services.spawn(self.services.index_community(), name="index-community")
