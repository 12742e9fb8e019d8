"""👍/👎 on Slack answers: the button carries the answer id, so votes keep working after a restart; they go to the
shared feedback store with ``platform = "slack"`` and the workspace id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.followup import NOT_YET_LABEL, NOT_YET_THANKS, QUESTION, SOLVED_LABEL
from bot.services import Place, Services
from bot.slack.admin import is_admin
from bot.slack.render import SOLVED, VOTE_DOWN, VOTE_UP, escape, parse_solved
from rag.feedback import DueFollowUp

logger = logging.getLogger(__name__)


class SlackVotes:
    def __init__(self, services: Services, on_down: Callable[[str, str], None] | None = None) -> None:
        self.services = services
        self._on_down = on_down  # told (channel, thread) of a 👎: a support thread then needs help

    async def on_vote(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        team = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        recorded = await self.services.vote(
            str(action.get("value") or ""), user, action.get("action_id") == VOTE_UP, Place("slack", team)
        )
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or "")
        if action.get("action_id") != VOTE_UP and self._on_down is not None and message.get("thread_ts"):
            self._on_down(channel, str(message["thread_ts"]))
        said = NOT_YET_THANKS if action.get("text", {}).get("text") == NOT_YET_LABEL else "Thanks for the feedback!"
        text = said if recorded else "That answer is too old to rate."
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:
            logger.warning("slack vote acknowledgement failed: %s", exc)


class SlackSolved:
    """ "This solved it" on answers to support questions: for the asker and workspace admins. It records the thread
    as solved and puts ✅ on the question. The asker comes with the button; on a button without one (posted before it
    did, or under "Did this solve it?", which keeps no user id), Docent's memory (``askers``) says, else whether the
    clicker's hashed id asked in the thread (``FeedbackStore.asked_in``)."""

    def __init__(self, services: Services, askers: Callable[[str, str], str | None]) -> None:
        self.services = services
        self._asker_of = askers  # (channel, thread) -> who asked, if Docent remembers

    async def on_solved(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        channel, thread, asker = parse_solved(str(action.get("value") or ""))
        if asker is None:
            asker = self._asker_of(channel, thread)
        user = str((body.get("user") or {}).get("id") or "")
        allowed = (
            (asker is not None and asker == user)
            or await is_admin(client, user, self.services.settings.slack.admin_user_ids)
            or (asker is None and bool(thread) and await self.services.feedback.asked_in("slack", thread, user))
        )
        if not allowed or not thread:
            await respond(text="Only the person who asked (or an admin) can mark this solved.", replace_original=False)
            return
        team = str((body.get("team") or {}).get("id") or "")
        new = await self.services.solved(Place("slack", team), channel, thread)
        try:
            await client.reactions_add(channel=channel, timestamp=thread, name="white_check_mark")
        except Exception as exc:  # already there, or the question was deleted
            logger.info("slack: no ✅ on %s: %s", thread, exc)
        await respond(text="✅ Marked solved." if new else "Already marked solved.", replace_original=False)


class SlackFollowUps:
    """Posts "Did this solve it?" (``bot.followup.Poster``) in a support question's thread with "This solved it"
    and "Not yet" (the vote's 👎 path); Docent's own words, escaped: no mention, no broadcast."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def post_followup(self, due: DueFollowUp) -> None:
        buttons: list[dict[str, Any]] = [
            {
                "type": "button",
                "action_id": SOLVED,
                "value": f"{due.channel}|{due.thread}",  # no asker in it (``parse_solved``): see ``SlackSolved``
                "style": "primary",
                "text": {"type": "plain_text", "text": f"✅ {SOLVED_LABEL}"},
            },
            {
                "type": "button",
                "action_id": VOTE_DOWN,
                "value": due.answer_id,
                "text": {"type": "plain_text", "text": NOT_YET_LABEL},
            },
        ]
        text = escape(QUESTION)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": buttons},
        ]
        await self._client.chat_postMessage(channel=due.channel, thread_ts=due.thread, text=text, blocks=blocks)
