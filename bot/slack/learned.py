"""The learned command in Slack: this workspace's community answers waiting for approval, only to the admin who
asked, each with Approve, Edit (a modal with the answer to correct, then approved) and Reject. Nothing is learned
without approval; a decision re-indexes the community answers at once.

What is approved is what was shown: the question and the answer each get a section (3,000 characters), an answer
too long to show has no Approve (Edit it shorter), and Approve carries the version shown, so a message its author
stitched on since is refused until reviewed."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services, SupportThread
from bot.slack.admin import ADMINS_ONLY, is_admin
from bot.slack.render import escape, link
from rag.errors import Changed, Unlearnable
from rag.learned import Learned

logger = logging.getLogger(__name__)
APPROVE, EDIT, REJECT = "docent_learned_approve", "docent_learned_edit", "docent_learned_reject"
EDIT_VIEW = "docent_learned_edit_view"
TEACH = "docent_teach"  # the "Teach Docent" message shortcut
SHOWN = 10  # pairs per listing: 4 blocks each, and a header, stays under Slack's 50
SECTION_CHARS = 3000  # a section block's text
EDIT_TITLE = "Edit, then approve"
TOO_SLOW = "Slack didn't open the editor in time; click Edit again."
CHANGED = "#{id} changed since it was shown (its author added to it): list it again to review it as it is now."
SHORTER = "Edit it shorter, or review it whole in a terminal (`python -m bot learned list`)."
TOO_LONG = "#{id} is too long to show here whole, so it can't be approved as it is: " + SHORTER


async def link_and_author(client: AsyncWebClient, channel: str, ts: str, user: str) -> tuple[str, str]:
    """What a community answer cites: the message's permalink and its author's name."""
    link = str((await client.chat_getPermalink(channel=channel, message_ts=ts)).get("permalink") or "")
    info = await client.users_info(user=user)
    return link, str((info.get("user") or {}).get("name") or user)


@dataclass(frozen=True)
class Review:
    """A pending answer as an admin sees it: a section with its question, one with its answer, and whether both
    hold every word (only then is Approve offered)."""

    question: str
    answer: str
    whole: bool


def review(pair: Learned) -> Review:
    question = f"*#{pair.id}* by @{escape(pair.author)} — {link(pair.link, 'message')}\n*Q:* {escape(pair.question)}"
    answer = f"*A:* {escape(pair.answer)}"
    whole = len(question) <= SECTION_CHARS and len(answer) <= SECTION_CHARS
    if whole:
        return Review(question, answer, True)
    note = "…\n_⚠️ Too long to show here whole, so there is no Approve: " + SHORTER + "_"
    return Review(_cut(question, SECTION_CHARS - 1) + "…", _cut(answer, SECTION_CHARS - len(note)) + note, False)


def _cut(text: str, chars: int) -> str:
    """At most ``chars``, never inside an escape (``&amp;``)."""
    if len(text) <= chars:
        return text
    cut = text[:chars]
    amp = cut.rfind("&")
    return cut[:amp] if amp >= 0 and ";" not in cut[amp:] else cut


def pair_blocks(pair: Learned) -> list[dict[str, Any]]:
    shown = review(pair)
    labels = ((APPROVE, "✅ Approve"), (EDIT, "✏️ Edit"), (REJECT, "🗑️ Reject"))
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": action, "value": str(pair.id), "text": {"type": "plain_text", "text": label}}
        for action, label in labels
        if action != APPROVE or shown.whole  # approving is approving what was read: only what is shown whole
    ]
    if shown.whole:
        buttons[0]["value"] = f"{pair.id}:{pair.version}"  # the version shown: a changed answer is not approved
    buttons[-1]["style"] = "danger"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": shown.question}},
        {"type": "section", "text": {"type": "mrkdwn", "text": shown.answer}},
        {"type": "actions", "elements": buttons},
        {"type": "divider"},
    ]


def _notice(text: str) -> dict[str, Any]:
    """The edit modal with a line instead of the answer (loading, or why there is nothing to edit)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": EDIT_TITLE},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


class SlackLearned:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def _admin(self, client: AsyncWebClient, user: str) -> bool:
        return await is_admin(client, user, self.services.settings.slack.admin_user_ids)

    async def _mine(self, pair_id: str, team: str) -> Learned | None:
        """The pair a button or form names (``ID`` or ``ID:VERSION``), if it is this workspace's."""
        pair_id = pair_id.split(":", 1)[0]
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
        if action.get("action_id") == EDIT:
            await self._edit(body, client, respond, user, str(action.get("value") or ""))
            return
        if not await self._admin(client, user):
            await respond(text=ADMINS_ONLY.format(action="decide what Docent learns"), replace_original=False)
            return
        value = str(action.get("value") or "")
        pair = await self._mine(value, str((body.get("team") or {}).get("id") or ""))
        if pair is None:
            await respond(text="That answer is gone.", replace_original=False)
            return
        approved = action.get("action_id") == APPROVE
        version = value.partition(":")[2]
        if approved and pair.version != version:  # a button of an older listing, or a message stitched on since
            await respond(text=CHANGED.format(id=pair.id), replace_original=False)
            return
        if approved and not review(pair).whole:
            await respond(text=TOO_LONG.format(id=pair.id), replace_original=False)
            return
        try:
            await self._decide(pair, approved, user, version=version if approved else None)
        except Changed:
            await respond(text=CHANGED.format(id=pair.id), replace_original=False)
            return
        verdict = "✅ Approved: Docent can cite it now." if approved else "🗑️ Rejected: never used."
        await respond(text=f"#{pair.id} {verdict}", replace_original=False)

    async def _edit(
        self, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, user: str, pair_id: str
    ) -> None:
        """A trigger id opens one modal within 3 s, and the admin check (``users.info``) and the answer's read
        can take longer: the modal opens at once, loading, and is filled with ``views.update`` (no trigger)."""
        try:
            opened = await client.views_open(trigger_id=str(body.get("trigger_id")), view=_notice("Loading…"))
        except SlackApiError as exc:
            logger.info("slack: the edit modal did not open (%s)", exc.response.get("error"))
            await respond(text=TOO_SLOW, response_type="ephemeral", replace_original=False)
            return
        if not await self._admin(client, user):
            view = _notice(ADMINS_ONLY.format(action="decide what Docent learns"))
        else:
            pair = await self._mine(pair_id, str((body.get("team") or {}).get("id") or ""))
            view = self._edit_view(pair, body) if pair is not None else _notice("That answer is gone.")
        try:
            await client.views_update(view_id=str(opened["view"]["id"]), view=view)
        except SlackApiError as exc:  # the admin closed it meanwhile, or Slack refused it
            logger.warning("slack: could not fill the edit modal: %s", exc.response.get("error"))
            await respond(text="Slack didn't show the editor; click Edit again.", replace_original=False)

    def _edit_view(self, pair: Learned, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to correct, at most the cap (and a text input's 3,000): what is submitted is approved."""
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
        room = min(SECTION_CHARS, self.services.settings.bot.learned_answer_chars)
        return {
            "type": "modal",
            "callback_id": EDIT_VIEW,
            "private_metadata": json.dumps({"id": pair.id, "channel": channel}),
            "title": {"type": "plain_text", "text": EDIT_TITLE},
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
                        "max_length": room,
                        "initial_value": pair.answer[:room],
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
        edited = str(((values.get("answer") or {}).get("text") or {}).get("value") or "").strip() or pair.answer
        said = f"#{pair.id} ✅ Approved with your edit."
        if not review(dataclasses.replace(pair, answer=edited)).whole:
            said = TOO_LONG.format(id=pair.id)
        else:
            try:
                await self._decide(pair, True, user, answer=edited)
            except Unlearnable as exc:
                said = f"#{pair.id}: {exc.user_message}"
        if meta.get("channel"):
            try:
                await client.chat_postEphemeral(channel=str(meta["channel"]), user=user, text=said)
            except Exception as exc:
                logger.info("slack: could not confirm an edit: %s", exc)

    async def _decide(
        self, pair: Learned, approved: bool, user: str, *, answer: str | None = None, version: str | None = None
    ) -> None:
        await self.services.learned.decide(
            pair.id, "approved" if approved else "rejected", answer=answer, version=version
        )
        logger.info("community answer %d %s by %s", pair.id, "approved" if approved else "rejected", user)
        self.services.spawn(self.services.index_community(), name="index-community")

    async def on_teach(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
        support_of: Callable[[str, str], SupportThread | None],
    ) -> None:
        """ "Teach Docent" on a member's message: an admin offers it for approval. The question is the support
        question of its thread, else the thread's first message."""
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        if not await self._admin(client, user):
            await respond(text=ADMINS_ONLY.format(action="teach Docent"), response_type="ephemeral")
            return
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or "")
        ts, root = str(message.get("ts") or ""), str(message.get("thread_ts") or "")
        question = await self._question(client, channel, root, ts, support_of)
        answer = str(message.get("text") or "").strip()
        if question is None or not answer or message.get("bot_id"):
            await respond(
                text="I can't tell which question this answers: use it on a reply in the question's thread.",
                response_type="ephemeral",
            )
            return
        asker, text = question
        try:
            link, author = await link_and_author(client, channel, ts, str(message.get("user")))
        except Exception as exc:
            logger.warning("slack teach: could not look up the message: %s", exc)
            await respond(text="Slack didn't let me read that message; try again.", response_type="ephemeral")
            return
        try:
            pair = await self.services.learned.capture(
                platform="slack",
                space=str((body.get("team") or {}).get("id") or ""),
                private=True,  # a shortcut's payload does not say whether its channel is private: kept here
                channel=channel,
                thread=f"teach-{ts}",
                question=text,
                answer=answer,
                link=link,
                author=author,
                author_id=str(message.get("user")),
                asker_id=asker,
            )
        except Unlearnable as exc:
            await respond(text=f"Not saved: {exc.user_message}", response_type="ephemeral")
            return
        await respond(text=f"Saved as #{pair} for approval in /docent-learned.", response_type="ephemeral")

    async def _question(
        self,
        client: AsyncWebClient,
        channel: str,
        root: str,
        ts: str,
        support_of: Callable[[str, str], SupportThread | None],
    ) -> tuple[str, str] | None:
        if not root or root == ts:
            return None
        support = support_of(channel, root)
        if support is not None:
            return str(support.asker), support.question
        try:
            replies = await client.conversations_replies(channel=channel, ts=root, limit=1)
        except Exception as exc:
            logger.info("slack teach: no thread %s: %s", root, exc)
            return None
        first = (replies.get("messages") or [{}])[0]
        text = str(first.get("text") or "").strip()
        return (str(first.get("user") or ""), text) if text else None
