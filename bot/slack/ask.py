"""Answer questions in Slack: mentions, follow-ups in the bot's threads, direct messages and the assistant panel,
and the ask slash command (in a thread under a short "@user asked" line, or only to the asker with ``private``).

Every answer goes into one message, streamed with ``chat.update`` at most every ``bot.edit_interval_s``, and
finished with sources, the AI notice and vote buttons. The waiting, streaming and recording are the shared
``bot.services``; this module only delivers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversations
from bot.services import SEARCHING, Place, Services, SupportThread
from bot.slack.admin import is_admin
from bot.slack.learned import link_and_author
from bot.slack.render import SECTION_LIMIT, answer_blocks, escape, mrkdwn, solved_value
from bot.slack.threads import read_thread
from rag import logs
from rag.errors import DocentError, Skipped, StartingUp, describe, new_error_id
from rag.models import Answer
from rag.prompt import Turn
from rag.settings import ChannelPolicy

logger = logging.getLogger(__name__)
ONLY_IN_CHANNELS = "I only answer in channels. Mention me in one, or use the ask command there."
NOT_IN_CHANNEL = (
    "I'm not in this channel, so here is the answer just for you. Invite me (`/invite @Docent`) to answer in it."
)
USAGE = "Ask after the command: `{command} how do I create a collection?` (`{command} private …`: only you see it)."
SKIP_NAME = "no_entry_sign"  # 🚫, as Slack names it
OFF_HERE = "Docent is switched off in this channel."
HANDOFF = "I'm not sure about this one, so I'll leave it to the helpers."
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SEEN_EVENTS = 2048


def question_text(text: str) -> str:
    """The question in a mention: user mentions dropped and Slack's three escapes undone."""
    text = _USER_MENTION.sub(" ", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def parse_ask(text: str) -> tuple[str, bool]:
    """``/ask [private] QUESTION`` → (question, private)."""
    words = text.strip().split(maxsplit=1)
    if words and words[0].lower() == "private":
        return (words[1] if len(words) > 1 else "").strip(), True
    return text.strip(), False


class Reply(Protocol):
    async def notice(self, text: str) -> None:
        """Best effort: a plain-text notice (queue position) while the answer waits."""
        ...

    async def partial(self, text: str) -> None:
        """Best effort: the model's answer so far (markdown, unescaped)."""
        ...

    async def final(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Must land: the answer, or the worded failure (mrkdwn)."""
        ...


class ThreadReply:
    """One message in a thread carrying the answer.

    With ``stream_to`` (team, user) it uses Slack's chat streaming API (``chat.startStream``/``appendStream``/
    ``stopStream``), made for token streams and not rate-limited like ``chat.update``; a workspace without it answers
    with an error and the reply falls back to a placeholder edited with ``chat.update``. Either way the finished
    message is written with ``chat.update``, so its text, sources and buttons are exactly the non-streamed ones
    (citations are renumbered once the model is done, and streamed text can only be appended to).
    """

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        *,
        stream_to: tuple[str, str] | None = None,
        skipped: Callable[[], bool] = lambda: False,
    ) -> None:
        self._client, self.channel, self.thread_ts = client, channel, thread_ts
        self._stream_to = stream_to
        self._skipped = skipped  # a moderator said not to answer: nothing is posted, ever
        self.ts: str | None = None
        self.streaming = False
        self.stream_error: str | None = None  # why the streaming API was refused, if it was
        self._streamed = ""

    async def open(self, *, placeholder: bool = True) -> None:
        """Reply at once: a stream, else a "Searching the docs…" placeholder (none under an assistant status: the
        first text is posted instead)."""
        if self._stream_to is not None:
            team, user = self._stream_to
            try:
                response = await self._client.chat_startStream(
                    channel=self.channel, thread_ts=self.thread_ts, recipient_team_id=team, recipient_user_id=user
                )
                self.ts, self.streaming = str(response["ts"]), True
                return
            except SlackApiError as exc:
                self.stream_error = str(exc.response.get("error") or "error")
        if placeholder:
            await self._post(SEARCHING)

    async def _post(self, text: str) -> None:
        response = await self._client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts or None, text=text
        )
        self.ts = str(response["ts"])

    async def _show(self, text: str) -> None:
        if self.ts is None and self._skipped():
            return
        try:
            if self.ts is None:
                await self._post(text)
            else:
                await self._client.chat_update(channel=self.channel, ts=self.ts, text=text)
        except Exception as exc:
            logger.warning("slack progress edit failed: %s: %s", type(exc).__name__, exc)

    async def notice(self, text: str) -> None:
        if not self.streaming:
            await self._show(escape(text))

    async def partial(self, text: str) -> None:
        if not self.streaming:
            await self._show(mrkdwn(text)[: SECTION_LIMIT - 2] + " …")
            return
        # Append only whole words, and only while the text still extends what was streamed: the stream can't be
        # rewritten, and the final edit replaces it anyway. (Whole lines kept a real model's one-paragraph answer
        # invisible until it was done.)
        ready = escape(text[: max(text.rfind(" "), text.rfind("\n")) + 1])
        if not ready.startswith(self._streamed) or len(ready) == len(self._streamed):
            return
        delta = ready[len(self._streamed) :]
        try:
            await self._client.chat_appendStream(channel=self.channel, ts=str(self.ts), markdown_text=delta)
            self._streamed = ready
        except Exception as exc:
            logger.warning("slack stream append failed: %s: %s", type(exc).__name__, exc)

    async def final(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        if self.ts is None and self._skipped():
            raise Skipped("a moderator skipped this question")
        if self.streaming:
            self.streaming = False
            try:
                await self._client.chat_stopStream(channel=self.channel, ts=str(self.ts))
            except Exception as exc:
                logger.warning("slack stream stop failed: %s: %s", type(exc).__name__, exc)
        if self.ts is not None:
            try:
                await self._client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks or [])
                return
            except Exception as exc:
                logger.warning("slack final edit failed (%s: %s); posting the answer instead", type(exc).__name__, exc)
        response = await self._client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts or None, text=text, blocks=blocks or None
        )
        self.ts = str(response["ts"])


class PrivateReply:
    """Only the asker sees it: the slash command's response URL, which Slack lets an app use five times, so the
    answer replaces the "Searching" acknowledgement once instead of streaming."""

    def __init__(self, respond: AsyncRespond, note: str = "") -> None:
        self._respond = respond
        self._note = note

    async def notice(self, text: str) -> None:
        return None

    async def partial(self, text: str) -> None:
        return None

    async def final(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        if self._note:
            note = {"type": "context", "elements": [{"type": "mrkdwn", "text": self._note}]}
            blocks = [note, *(blocks or [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])]
        await self._respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=True)


class SlackAsker:
    """Mentions, thread follow-ups, DMs, the assistant panel and the ask command: one answering path."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.conversations = Conversations(max_turns=self.settings.bot.history_turns)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._no_streaming: set[str] = set()  # workspaces that refused chat.startStream
        self.support: OrderedDict[tuple[str, str], SupportThread] = OrderedDict()  # by (channel, thread)
        self._skipped: OrderedDict[tuple[str, str], None] = OrderedDict()  # new questions an admin marked skip

    def _first_time(self, body: dict[str, Any]) -> bool:
        """A message is answered once, so it is known by its channel and ts, not by the event: Slack delivers an
        event again after a lost ack, and a mention again, as a new event, when its message is edited. (An edit
        that first mentions Docent is a first time, and is answered.)"""
        event = body.get("event") or {}
        channel, ts = event.get("channel"), event.get("ts")
        key = f"{channel}/{ts}" if channel and ts else str(body.get("event_id") or "")
        if not key:
            return True
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > _SEEN_EVENTS:
            self._seen.popitem(last=False)
        return True

    # -- events ----------------------------------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any], client: AsyncWebClient, bot_user_id: str | None = None) -> None:
        event = body.get("event") or {}
        if not self._first_time(body):
            logger.info("slack: message %s delivered again or edited; answered once", event.get("ts"))
            return
        policy = await self.services.channels.policy("slack", event.get("channel"))
        if policy.mode == "off":
            return
        root = event.get("thread_ts")
        await self._answer_event(
            client,
            body,
            event,
            thread=str(root or event.get("ts")),
            started=root is None,
            policy=policy,
            me=bot_user_id,
        )

    async def on_message(self, body: dict[str, Any], client: AsyncWebClient, bot_user_id: str | None) -> None:
        """Un-mentioned messages: follow-ups in threads the bot started, and direct messages (the assistant panel
        included), as bolt's message listener passes them (no edits or joins). Mentions are left to ``on_mention``;
        other bots' messages are ignored."""
        event = body.get("event") or {}
        if event.get("bot_id") or not event.get("user") or event.get("user") == bot_user_id:
            return
        text = str(event.get("text") or "")
        if bot_user_id and f"<@{bot_user_id}" in text and event.get("channel_type") != "im":
            return
        channel, root = str(event.get("channel")), event.get("thread_ts")
        if event.get("channel_type") == "im":
            if not self._first_time(body):
                return
            if self.settings.bot.direct_messages == "refuse":
                await client.chat_postMessage(channel=channel, text=ONLY_IN_CHANNELS)
                return
            await self._answer_event(client, body, event, thread=str(root or event.get("ts")), started=True)
            return
        policy = await self.services.channels.policy("slack", channel)
        if policy.mode == "off":
            return
        if root is None:
            is_question = policy.mode in ("auto", "always") and len(question_text(text)) >= policy.min_chars
            if is_question and self._first_time(body):
                await self._answer_new_question(client, body, event, policy)
            return
        support = self.support.get((channel, str(root)))
        if support is not None and support.asker != event.get("user"):
            # A support thread: only the asker's follow-ups get more answers; others are people helping, and a
            # trusted member's answer after a hand-off is offered for learning.
            if self._first_time(body):
                await self._maybe_learn(client, body, event, support)
            return
        if not self.settings.slack.thread_followups or not self.conversations.knows(("ours", channel, str(root))):
            return
        if not self._first_time(body):
            return
        await self._answer_event(client, body, event, thread=str(root), started=True, policy=policy)

    async def _answer_new_question(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], policy: ChannelPolicy
    ) -> None:
        """A new question in an auto/always channel, answered in its thread; in auto, only when retrieval is
        confident, else handed off. Nothing is visible until the answer starts, and unasked means quiet: no
        placeholder, no stream, no admission notice."""
        channel, user, ts = str(event.get("channel")), str(event.get("user")), str(event.get("ts"))
        place = Place("slack", str(body.get("team_id") or event.get("team") or ""))
        if not self.services.pipeline.ready:  # nobody asked: no "starting up" reply either
            logger.info("slack: a new question in %s was not considered (the engine is starting)", channel)
            return
        if self.services.admit(user, place) is not None:
            logger.info("slack: a new question in %s was not considered (admission)", channel)
            return
        auto = policy.mode == "auto"
        # In the question's thread, or — with reply_in_thread off — in the channel itself ("" = no thread).
        thread = ts if policy.reply_in_thread else ""
        reply = ThreadReply(client, channel, thread, skipped=lambda: (channel, ts) in self._skipped)
        answer = await self.answer(
            question_text(str(event.get("text") or "")),
            reply,
            user=user,
            place=place,
            private=False,
            policy=policy,
            quiet_refusal=auto,
            support=(channel, ts),
        )
        if answer is None:
            return
        support = SupportThread(ts, user, answer.question, needs_help=answer.unsure)
        self.support[(channel, ts)] = support
        while len(self.support) > _SEEN_EVENTS:
            self.support.popitem(last=False)
        if answer.unsure and auto:
            await self._hand_off(client, channel, ts, policy)
            return
        self.remember(channel, ts, (), answer, started=True)

    async def on_reaction(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A workspace admin's :no_entry_sign: on a new question keeps Docent from answering it (if the answer isn't
        posted yet)."""
        event = body.get("event") or {}
        item = event.get("item") or {}
        if event.get("reaction") != SKIP_NAME or item.get("type") != "message":
            return
        if not await is_admin(client, str(event.get("user")), self.settings.slack.admin_user_ids):
            return
        self._skipped[(str(item.get("channel")), str(item.get("ts")))] = None
        while len(self._skipped) > _SEEN_EVENTS:
            self._skipped.popitem(last=False)

    def asker_of(self, channel: str, thread: str) -> str | None:
        support = self.support.get((channel, thread))
        return str(support.asker) if support is not None else None

    def needs_help(self, channel: str, thread: str) -> None:
        """A 👎 on the answer in a support thread: a trusted member's answer there is worth learning."""
        support = self.support.get((channel, thread))
        if support is not None:
            support.needs_help = True

    async def _maybe_learn(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], support: SupportThread
    ) -> None:
        user = str(event.get("user"))
        if not support.needs_help or user not in self.settings.slack.trusted_user_ids:
            return
        channel, ts = str(event.get("channel")), str(event.get("ts"))
        try:
            link, author = await link_and_author(client, channel, ts, user)
        except Exception as exc:
            logger.warning("slack: could not look up a trusted answer's link or author: %s", exc)
            return
        await self.services.capture(
            support,
            platform="slack",
            space=str(body.get("team_id") or ""),
            channel=channel,
            answer=question_text(str(event.get("text") or "")),
            link=link,
            author=author,
            author_id=user,
        )

    async def _hand_off(self, client: AsyncWebClient, channel: str, ts: str, policy: ChannelPolicy) -> None:
        """Not sure: a 👀 reaction, or a line in the thread that may ping the channel's helper group — the one
        notification Docent ever sends, and only when the operator configured it."""
        try:
            if policy.handoff == "react":
                await client.reactions_add(channel=channel, timestamp=ts, name="eyes")
            elif policy.handoff == "message":
                ping = f" <!subteam^{policy.helper_role}>" if _GROUP_ID.fullmatch(policy.helper_role) else ""
                await client.chat_postMessage(channel=channel, thread_ts=ts, text=HANDOFF + ping)
        except Exception as exc:
            logger.warning("slack hand-off in %s failed: %s", channel, exc)

    async def _answer_event(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        event: dict[str, Any],
        *,
        thread: str,
        started: bool,
        policy: ChannelPolicy | None = None,
        me: str | None = None,
    ) -> None:
        channel, user = str(event.get("channel")), str(event.get("user"))
        place = Place("slack", str(body.get("team_id") or event.get("team") or ""))
        refusal = self.services.admit(user, place)
        if refusal is not None:
            if refusal.notify:  # once per window, to the asker only
                await client.chat_postEphemeral(channel=channel, user=user, text=refusal.message, thread_ts=thread)
            return
        history = self.conversations.history(("history", channel, thread))
        assistant = event.get("channel_type") == "im" and event.get("thread_ts") is not None
        said: tuple[str, ...] = ()
        asked = str(event.get("ts") or "")
        if not history and not assistant and event.get("thread_ts") and thread != asked:  # mentioned into a thread
            said = await read_thread(client, channel, thread, asked, me or "", self.settings.bot)
        if assistant:  # the assistant panel shows a status instead of a placeholder message
            await self._set_status(client, channel, thread, SEARCHING)
        reply = await self.open_reply(client, channel, thread, place, user, placeholder=not assistant)
        answer = await self.answer(
            question_text(str(event.get("text") or "")),
            reply,
            user=user,
            place=place,
            private=False,
            history=history,
            policy=policy,
            thread=said,
        )
        if assistant and answer is None:
            await self._set_status(client, channel, thread, "")
        if answer is not None and not answer.refused:
            self.remember(channel, thread, history, answer, started=started)

    async def open_reply(
        self, client: AsyncWebClient, channel: str, thread: str, place: Place, user: str, *, placeholder: bool = True
    ) -> ThreadReply:
        """A reply in ``thread``, streamed with Slack's chat streaming API unless it is off or this workspace
        refused it before (remembered, so a workspace without it costs one failed call, not one per answer)."""
        team = str(place.space or "")
        stream = self.settings.slack.streaming and team not in self._no_streaming
        reply = ThreadReply(client, channel, thread, stream_to=(team, user) if stream else None)
        await reply.open(placeholder=placeholder)
        if reply.stream_error is not None:
            self._no_streaming.add(team)
            logger.info(
                "slack workspace %s has no chat streaming (%s); editing messages instead", team, reply.stream_error
            )
        return reply

    async def _set_status(self, client: AsyncWebClient, channel: str, thread: str, status: str) -> None:
        try:
            await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread, status=status)
        except Exception as exc:
            logger.warning("slack assistant status failed: %s: %s", type(exc).__name__, exc)

    def remember(self, channel: str, thread: str, history: tuple[Turn, ...], answer: Answer, *, started: bool) -> None:
        """Every answered thread keeps its turns for mentions; only threads the bot started take un-mentioned
        replies, so it never joins a conversation between people uninvited."""
        keys: list[tuple[str, str, str]] = [("history", channel, thread)]
        if started:
            keys.append(("ours", channel, thread))
        self.conversations.remember(keys, history, Turn(answer.question, answer.text))

    # -- the ask command -------------------------------------------------------------------------------------------

    async def on_ask(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        """Acknowledged at once, always (Slack allows 3 s); the answer comes after."""
        question, private = parse_ask(str(body.get("text") or ""))
        command = str(body.get("command") or self.settings.slack.ask_command)
        if not question:
            await ack(USAGE.format(command=command))
            return
        channel, user = str(body.get("channel_id")), str(body.get("user_id"))
        place = Place("slack", str(body.get("team_id") or ""))
        is_dm = channel.startswith("D")
        policy = await self.services.channels.policy("slack", channel)
        if policy.mode == "off":
            await ack(OFF_HERE)
            return
        if is_dm and self.settings.bot.direct_messages == "refuse":
            await ack(ONLY_IN_CHANNELS)
            return
        refusal = self.services.admit(user, place)
        if refusal is not None:
            await ack(refusal.message)
            return
        if private or is_dm:
            await ack(SEARCHING)
            await self.answer(question, PrivateReply(respond), user=user, place=place, private=True, policy=policy)
            return
        await ack()
        name = escape(str(body.get("user_name") or "someone"))
        try:
            asked = await client.chat_postMessage(channel=channel, text=f"*@{name}* asked: {escape(question)}"[:3000])
        except Exception as exc:  # not in the channel, or it is archived: answer the asker alone, and say why
            logger.info("slack ask: cannot post in %s (%s); answering privately", channel, exc)
            note = PrivateReply(respond, NOT_IN_CHANNEL)
            await self.answer(question, note, user=user, place=place, private=True, policy=policy)
            return
        thread = str(asked["ts"])
        reply = await self.open_reply(client, channel, thread, place, user)
        answer = await self.answer(question, reply, user=user, place=place, private=False, policy=policy)
        if answer is not None and not answer.refused:
            self.remember(channel, thread, (), answer, started=True)

    # -- the shared answering path ---------------------------------------------------------------------------------

    async def answer(
        self,
        question: str,
        reply: Reply,
        *,
        user: str,
        place: Place,
        private: bool,
        history: tuple[Turn, ...] = (),
        policy: ChannelPolicy | None = None,
        quiet_refusal: bool = False,
        support: tuple[str, str] | None = None,
        thread: tuple[str, ...] = (),
    ) -> Answer | None:
        """Stream the answer into ``reply``, finish it with sources and vote buttons, then record it. None if it
        failed; the asker has then been told why. The answer is posted before it is recorded.

        The channel's ``policy`` limits the sources; with ``quiet_refusal`` (a question nobody asked Docent) a
        refusal is recorded, as unanswered, but not posted, and the threshold is the channel's ``min_confidence``.
        """
        request_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        context = logs.request_id.set(request_id)
        try:
            try:
                answer = await self.services.generate(
                    question,
                    history=history,
                    request_id=request_id,
                    notice=reply.notice,
                    partial=reply.partial if not quiet_refusal else _nothing,  # unasked: nothing until it is sure
                    source_ids=policy.sources if policy else (),
                    min_score=policy.min_confidence if policy and quiet_refusal else None,
                    thread=thread,
                )
            except Exception as exc:  # one bad question never takes the bot down; the asker gets a worded reason
                if quiet_refusal:  # nobody asked: log it, say nothing (also while the engine starts)
                    level = logging.INFO if isinstance(exc, StartingUp) else logging.WARNING
                    logger.log(level, "slack request %s (unasked) not answered: %s", request_id, exc)
                else:
                    await self._fail(exc, reply, request_id)
                return None
            posted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.services.record_later(answer, posted, user, place, private=private, support=support)
            if quiet_refusal and answer.unsure:
                posted.set_result(True)  # recorded as unanswered; the caller hands it off
                return answer
            solved = solved_value(*support, user) if support and not answer.refused else ""
            text, blocks = answer_blocks(answer, feedback_id=answer.request_id, solved=solved)
            try:
                await reply.final(text, blocks)
            except Skipped:
                posted.set_result(False)
                logger.info("slack request %s skipped by a moderator", request_id)
                return None
            except Exception as exc:
                posted.set_result(False)
                await self._fail(exc, reply, request_id)
                return None
            posted.set_result(True)
            self.services.metrics.answered(answer, time.monotonic() - started)
            logger.info(
                "slack request %s answered in %.0f ms (%d blocks, %d sources, refused=%s)",
                request_id,
                (time.monotonic() - started) * 1000,
                len(blocks),
                len(answer.citations),
                answer.refused,
            )
            return answer
        finally:
            logs.request_id.reset(context)

    async def _fail(self, exc: Exception, reply: Reply, request_id: str) -> None:
        self.services.metrics.failed(exc)
        error_id = new_error_id()
        if isinstance(exc, DocentError) and not exc.shows_error_id:  # expected (a bad question, starting up)
            logger.info("slack request %s refused: %s", request_id, exc)
        else:
            logger.warning("slack request %s failed (error id %s)", request_id, error_id, exc_info=True)
        try:
            await reply.final(escape(describe(exc, error_id)))
        except Exception:
            logger.warning("slack request %s: could not tell the asker about error %s", request_id, error_id)


async def _nothing(_: str) -> None:
    """A quiet reply step: a question nobody asked Docent shows nothing until its answer is final."""
    return None
