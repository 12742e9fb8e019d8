"""Answer questions in Slack: mentions, follow-ups in Docent's threads, direct messages and the assistant panel,
the ask slash command (in a thread under a short "@user asked" line, or only to the asker with ``private``), and
new questions in support channels.

Each event becomes a neutral ``Incoming`` that ``bot.incoming.classify`` decides on; the answering itself is
``bot.answering`` and support channels are ``bot.support``. This module only delivers: one message per answer,
streamed with Slack's chat streaming API or edited with ``chat.update`` (paced per workspace), finished with
sources, the AI notice and vote buttons.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.answering import AnswerFlow, Question
from bot.bounded import BoundedMap
from bot.conversations import Conversations
from bot.incoming import Action, Incoming, Rules, classify
from bot.services import SEARCHING, Place, Services, SupportThread
from bot.slack.admin import is_admin
from bot.slack.learned import link_and_author
from bot.slack.render import SECTION_LIMIT, answer_blocks, escape, mrkdwn, solved_value
from bot.slack.threads import read_thread
from bot.support import HANDOFF, SupportDesk
from rag.errors import Skipped
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
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SEEN_EVENTS = 2048
# Errors of chat.startStream that mean this workspace has no streaming at all; any other (a rate limit, a channel
# Docent is not in, an archived one) is about this one reply.
NO_STREAMING = frozenset({"unknown_method", "missing_scope", "not_allowed_token_type", "invalid_auth", "not_authed"})
# chat.update is Tier 3 (about 50 a minute per workspace): progress edits take at most 30 of them, so the final
# answers, which are never skipped, keep the rest.
UPDATE_INTERVAL_S = 2.0


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


class Pacer:
    """Progress edits of one workspace share chat.update's rate limit: an edit goes out only when the workspace's
    budget allows, and a ``ratelimited`` answer pauses them for Retry-After. A skipped progress edit costs
    nothing (the next one carries more text); the final answer is never paced."""

    def __init__(self, interval_s: float = UPDATE_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0

    def take(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval_s
        return True

    def spend(self) -> None:
        """A call that is never skipped (a final answer) uses the budget too: progress waits its turn."""
        self._next = max(self._next, self._clock() + self._interval_s)

    def back_off(self, seconds: float) -> None:
        self._next = max(self._next, self._clock() + seconds)


def _retry_after(exc: SlackApiError) -> float | None:
    """Seconds to wait, if ``exc`` is a rate limit."""
    response = exc.response
    if response.status_code != 429 and response.get("error") != "ratelimited":
        return None
    try:
        return float((response.headers or {}).get("Retry-After") or (response.headers or {}).get("retry-after") or 1)
    except (TypeError, ValueError):
        return 1.0


class ThreadReply:
    """``bot.answering.Reply`` as one message in a thread (or, with no thread, in the channel).

    Nothing is posted before the first word. With ``stream_to`` (team, user) it streams through slack_sdk's
    ``chat_stream`` (Slack's chat streaming API: made for token streams, not rate-limited like ``chat.update``;
    the status line that opens it is replaced with the answer at the end); if this reply's stream is refused it falls
    back to a message edited with ``chat.update`` (``stream_refused`` is told why, so a workspace without streaming
    costs one failed call, not one per answer). Either way the finished message is written with ``chat.update``,
    so its text, sources and buttons are exactly the non-streamed ones. Under the assistant panel, notices are the
    panel's status line instead of a message.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        *,
        asker: str,
        pacer: Pacer | None = None,
        progress_client: AsyncWebClient | None = None,
        stream_to: tuple[str, str] | None = None,
        stream_refused: Callable[[str], None] = lambda _: None,
        assistant: bool = False,
        solved: str = "",
        skipped: Callable[[], bool] = lambda: False,
    ) -> None:
        self._client, self.channel, self.thread_ts = client, channel, thread_ts
        self._progress = progress_client or client  # without the rate-limit retry: a throttled edit is skipped
        self._asker = asker
        self._pacer = pacer or Pacer()
        self._stream_to = stream_to
        self._stream_refused = stream_refused
        self._assistant = assistant
        self._solved = solved
        self._skipped = skipped  # a moderator said not to answer: nothing is posted, ever
        self.ts: str | None = None
        self.streaming = False
        self._stream: AsyncChatStream | None = None
        self._streamed = ""  # the answer text appended to the stream so far

    async def _open(self, text: str, *, words: bool = False) -> None:
        """The first visible text: a stream (a notice is its first line, the answer's first ``words`` its start),
        else a message."""
        if self._skipped():
            raise Skipped("a moderator skipped this question")
        if self._stream_to is not None:
            team, user = self._stream_to
            stream = await self._client.chat_stream(
                channel=self.channel,
                thread_ts=self.thread_ts,
                recipient_team_id=team,
                recipient_user_id=user,
                buffer_size=1,  # every whole word at once: the pacing is the answer flow's edit interval
            )
            try:
                await stream.append(markdown_text=text if words else text + "\n\n")  # the first flush starts it
                self._stream, self.ts, self.streaming = stream, str(stream.ts), True
                return
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "error")
                if error in NO_STREAMING:
                    self._stream_refused(error)
                logger.info("slack stream refused in %s (%s); editing a message instead", self.channel, error)
        response = await self._client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts or None, text=text
        )
        self.ts = str(response["ts"])

    async def _append(self, markdown: str) -> None:
        assert self._stream is not None
        await self._stream.append(markdown_text=markdown)

    async def _edit(self, text: str) -> None:
        """A progress edit: only when the workspace's chat.update budget allows, skipped when throttled."""
        if not self._pacer.take():
            return
        try:
            await self._progress.chat_update(channel=self.channel, ts=str(self.ts), text=text)
        except SlackApiError as exc:
            wait = _retry_after(exc)
            if wait is None:
                raise
            self._pacer.back_off(wait)
            logger.info("slack progress edit throttled; next in %.0f s", wait)

    async def _set_status(self, status: str) -> None:
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self.channel, thread_ts=self.thread_ts, status=status
            )
        except Exception as exc:
            logger.warning("slack assistant status failed: %s: %s", type(exc).__name__, exc)

    async def notice(self, text: str) -> None:
        if self.ts is None and self._assistant:
            await self._set_status(text)
        elif self.ts is None:
            await self._open(escape(text))
        elif self.streaming:
            if not self._streamed and text != SEARCHING:  # a queue notice, above the answer until it is final
                await self._append(escape(text) + "\n\n")
        else:
            await self._edit(escape(text))

    async def partial(self, text: str) -> None:
        shown = mrkdwn(text)[: SECTION_LIMIT - 2] + " …"
        # Streams take only whole words, and only while the text still extends what was streamed: a stream can't
        # be rewritten, and the final edit replaces it anyway. (Whole lines kept a real model's one-paragraph
        # answer invisible until it was done.)
        ready = escape(text[: max(text.rfind(" "), text.rfind("\n")) + 1])
        if self.ts is None:  # the first visible words (under the assistant panel, a status was shown until now)
            if self._stream_to is None or ready:
                await self._open(ready if self._stream_to is not None else shown, words=True)
                self._streamed = ready if self.streaming else ""
            return
        if not self.streaming:
            await self._edit(shown)
            return
        if not ready.startswith(self._streamed) or len(ready) == len(self._streamed):
            return
        await self._append(ready[len(self._streamed) :])
        self._streamed = ready

    async def final(self, answer: Answer) -> list[str]:
        text, blocks = answer_blocks(
            answer, feedback_id=answer.request_id, solved="" if answer.refused else self._solved
        )
        return [await self._finish(text, blocks)]

    async def fail(self, text: str) -> None:
        if self.ts is None:  # nothing posted yet: for the asker's eyes only
            if self._assistant:
                await self._set_status("")
            await self._client.chat_postEphemeral(
                channel=self.channel, user=self._asker, text=escape(text), thread_ts=self.thread_ts or None
            )
            return
        await self._finish(escape(text), None)

    async def _finish(self, text: str, blocks: list[dict[str, Any]] | None) -> str:
        """Must land: the stream is stopped, the message rewritten; if that fails, the text is posted anew."""
        if self.ts is None and self._skipped():
            raise Skipped("a moderator skipped this question")
        if self.streaming and self._stream is not None:
            self.streaming = False
            try:
                await self._stream.stop()
            except Exception as exc:
                logger.warning("slack stream stop failed: %s: %s", type(exc).__name__, exc)
        if self.ts is not None:
            self._pacer.spend()
            try:
                await self._client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks or [])
                return self.ts
            except Exception as exc:
                logger.warning("slack final edit failed (%s: %s); posting the answer instead", type(exc).__name__, exc)
        response = await self._client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts or None, text=text, blocks=blocks or None
        )
        self.ts = str(response["ts"])
        return self.ts


class PrivateReply:
    """Only the asker sees it: the slash command's response URL, which Slack lets an app use five times, so the
    answer replaces the acknowledgement once instead of streaming (notices other than "searching" take one use)."""

    def __init__(self, respond: AsyncRespond, note: str = "") -> None:
        self._respond = respond
        self._note = note
        self._notices = 0

    async def notice(self, text: str) -> None:
        if text != SEARCHING and self._notices < 2:
            self._notices += 1
            await self._respond(text=escape(text), response_type="ephemeral", replace_original=True)

    async def partial(self, text: str) -> None:
        return None

    async def final(self, answer: Answer) -> list[str]:
        text, blocks = answer_blocks(answer, feedback_id=answer.request_id)
        await self._send(text, blocks)
        return []

    async def fail(self, text: str) -> None:
        await self._send(escape(text), None)

    async def _send(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        if self._note:
            note = {"type": "context", "elements": [{"type": "mrkdwn", "text": self._note}]}
            blocks = [note, *(blocks or [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])]
        await self._respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=True)


class CommandReply:
    """The ask command in a channel: the "@user asked" line and the thread under it are posted only once there is
    something to show (a refused question leaves no trace), and where Docent cannot post (not in the channel,
    archived) the asker gets the answer privately, told why."""

    def __init__(
        self, ask_line: Callable[[], Awaitable[str]], thread: Callable[[str], ThreadReply], private: PrivateReply
    ):
        self._ask_line = ask_line
        self._thread = thread
        self._private = private
        self._to: ThreadReply | PrivateReply | None = None
        self.thread_ts: str | None = None

    async def _target(self) -> ThreadReply | PrivateReply:
        if self._to is None:
            try:
                self.thread_ts = await self._ask_line()
                self._to = self._thread(self.thread_ts)
            except Exception as exc:
                logger.info("slack ask: cannot post here (%s); answering privately", exc)
                self._to = self._private
        return self._to

    async def notice(self, text: str) -> None:
        await (await self._target()).notice(text)

    async def partial(self, text: str) -> None:
        await (await self._target()).partial(text)

    async def final(self, answer: Answer) -> list[str]:
        return await (await self._target()).final(answer)

    async def fail(self, text: str) -> None:
        await (self._to or self._private).fail(text)


class SlackAsker:
    """Every message, mention and ask command: classified once, answered through the one flow."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.flow = AnswerFlow(services, "slack")
        self.desk = SupportDesk(services, self.flow)  # support questions by (channel, thread)
        self.conversations = Conversations(max_turns=self.settings.bot.history_turns)
        self._seen: BoundedMap[str, None] = BoundedMap(_SEEN_EVENTS)
        self._no_streaming: BoundedMap[str, str] = BoundedMap(10_000)  # workspaces without chat streaming
        self._pacers: BoundedMap[str, Pacer] = BoundedMap(10_000)  # chat.update budget per workspace
        self._progress_clients: BoundedMap[str, AsyncWebClient] = BoundedMap(64)

    @property
    def support(self) -> BoundedMap[Any, SupportThread]:
        return self.desk.threads

    def _first_time(self, body: dict[str, Any]) -> bool:
        """A message is answered once, so it is known by its channel and ts, not by the event: Slack delivers an
        event again after a lost ack, and a mention again, as a new event, when its message is edited. (An edit
        that first mentions Docent is a first time, and is answered.)"""
        event = body.get("event") or {}
        channel, ts = event.get("channel"), event.get("ts")
        key = f"{channel}/{ts}" if channel and ts else str(body.get("event_id") or "")
        return not key or self._seen.first_time(key, None)

    def _rules(self) -> Rules:
        return Rules(
            unasked=True,
            followups_without_mention=self.settings.slack.thread_followups,
            direct_messages=self.settings.bot.direct_messages,
        )

    # -- events ----------------------------------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any], client: AsyncWebClient, bot_user_id: str | None = None) -> None:
        event = body.get("event") or {}
        if not self._first_time(body):
            logger.info("slack: message %s delivered again or edited; answered once", event.get("ts"))
            return
        root = event.get("thread_ts")
        if root and event.get("user"):  # a person's word in a thread Docent answered in: for the resolution figures
            self.services.watch.said("slack", str(event.get("user")), (str(root),))
        policy = await self.services.channels.policy("slack", event.get("channel"))
        incoming = Incoming(text=question_text(str(event.get("text") or "")), mentioned=True)
        if classify(incoming, policy, self._rules()) is not Action.ASK:
            return
        await self._answer(
            client,
            body,
            event,
            thread=str(root or event.get("ts")),
            started=root is None,
            policy=policy,
            me=bot_user_id,
        )

    async def on_message(self, body: dict[str, Any], client: AsyncWebClient, bot_user_id: str | None) -> None:
        """Un-mentioned messages, as bolt's message listener passes them (files and broadcast replies, no edits or
        joins): follow-ups in threads the bot started, direct messages (the assistant panel included) and new
        questions in support channels. Mentions in channels are left to ``on_mention``; bots are ignored."""
        event = body.get("event") or {}
        if event.get("bot_id") or not event.get("user") or event.get("user") == bot_user_id:
            return
        text = str(event.get("text") or "")
        direct = event.get("channel_type") == "im"
        if bot_user_id and f"<@{bot_user_id}" in text and not direct:
            return
        channel, root = str(event.get("channel")), event.get("thread_ts")
        if root and not direct:  # a person's word in a thread Docent answered in: for the resolution figures
            self.services.watch.said("slack", str(event.get("user")), (str(root),))
        policy = ChannelPolicy() if direct else await self.services.channels.policy("slack", channel)
        support = self.desk.threads.get((channel, str(root))) if root else None
        incoming = Incoming(
            text=question_text(text),
            direct=direct,
            top_level=root is None,
            in_docent_thread=root is not None and self.conversations.knows(("ours", channel, str(root))),
            in_support_thread=support is not None,
            by_asker=support is not None and str(support.asker) == str(event.get("user")),
        )
        action = classify(incoming, policy, self._rules())
        if action is Action.IGNORE or not self._first_time(body):
            return
        if action is Action.REFUSE_DM:
            await client.chat_postMessage(channel=channel, text=ONLY_IN_CHANNELS)
        elif action is Action.NEW_QUESTION:
            await self._answer_new_question(client, body, event, policy)
        elif action is Action.HELPER_REPLY and support is not None:
            await self._helper_replied(client, body, event, support)
        elif action is Action.ASK:
            thread = str(root or event.get("ts"))
            await self._answer(client, body, event, thread=thread, started=True, policy=None if direct else policy)

    async def _answer_new_question(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], policy: ChannelPolicy
    ) -> None:
        """A new question in an auto/always channel, answered in its thread; in auto, only when retrieval is
        confident, else handed off. Nothing is visible until the answer starts, and unasked means quiet: no
        placeholder, no stream, no admission notice."""
        channel, user, ts = str(event.get("channel")), str(event.get("user")), str(event.get("ts"))
        place = _place(body, event)
        key = (channel, ts)
        # In the question's thread, or — with reply_in_thread off — in the channel itself ("" = no thread).
        thread = ts if policy.reply_in_thread else ""
        reply = self._reply(
            client, channel, thread, place, user, stream=False, solved=solved_value(channel, ts, user), key=key
        )
        outcome = await self.desk.answer_new(
            key,
            Question(
                question_text(str(event.get("text") or "")),
                user,
                place,
                policy=policy,
                unasked=(channel, ts),
                quiet=policy.mode == "auto",
            ),
            reply,
            hand_off=lambda: self._hand_off(client, channel, ts, policy),
        )
        if outcome.continues and outcome.answer is not None:
            self.remember(channel, ts, (), outcome.answer, started=True)

    async def on_reaction(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A workspace admin's :no_entry_sign: on a new question keeps Docent from answering it (if the answer isn't
        posted yet)."""
        event = body.get("event") or {}
        item = event.get("item") or {}
        if item.get("type") == "message" and event.get("user"):  # the asker's reaction settles the follow-up
            self.services.watch.reacted("slack", str(event.get("user")), (str(item.get("ts")),))
        if event.get("reaction") != SKIP_NAME or item.get("type") != "message":
            return
        if not await is_admin(client, str(event.get("user")), self.settings.slack.admin_user_ids):
            return
        self.desk.skip((str(item.get("channel")), str(item.get("ts"))))

    def asker_of(self, channel: str, thread: str) -> str | None:
        support = self.desk.threads.get((channel, thread))
        return str(support.asker) if support is not None else None

    def needs_help(self, channel: str, thread: str) -> None:
        """A 👎 on the answer in a support thread: a trusted member's answer there is worth learning."""
        self.desk.needs_help((channel, thread))

    async def _helper_replied(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], support: SupportThread
    ) -> None:
        user = str(event.get("user"))
        if not support.needs_help or user not in self.settings.slack.trusted_user_ids:
            return  # not worth a users.info call
        channel, ts = str(event.get("channel")), str(event.get("ts"))
        try:
            link, author = await link_and_author(client, channel, ts, user)
        except Exception as exc:
            logger.warning("slack: could not look up a trusted answer's link or author: %s", exc)
            return
        await self.desk.helper_replied(
            support,
            trusted=True,
            text=question_text(str(event.get("text") or "")),
            platform="slack",
            space=str(body.get("team_id") or ""),
            private=event.get("channel_type") != "channel",  # "group": a private channel; "mpim": a group DM
            channel=channel,
            link=link,
            author=author,
            author_id=user,
        )

    async def _hand_off(self, client: AsyncWebClient, channel: str, ts: str, policy: ChannelPolicy) -> None:
        """Not sure: a 👀 reaction, or a line in the thread that may ping the channel's helper group — the one
        notification Docent ever sends, and only when the operator configured it."""
        if policy.handoff == "react":
            await client.reactions_add(channel=channel, timestamp=ts, name="eyes")
        elif policy.handoff == "message":
            ping = f" <!subteam^{policy.helper_role}>" if _GROUP_ID.fullmatch(policy.helper_role) else ""
            await client.chat_postMessage(channel=channel, thread_ts=ts, text=HANDOFF + ping)

    async def _answer(
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
        """A mention, a DM (the assistant panel included) or a follow-up in Docent's thread."""
        channel, user = str(event.get("channel")), str(event.get("user"))
        place = _place(body, event)
        history = self.conversations.history(("history", channel, thread))
        direct = event.get("channel_type") in ("im", "mpim")  # a direct message: private, whatever the workspace
        assistant = event.get("channel_type") == "im" and event.get("thread_ts") is not None
        said: tuple[str, ...] = ()
        asked = str(event.get("ts") or "")
        if not history and not assistant and event.get("thread_ts") and thread != asked:  # mentioned into a thread
            said = await read_thread(client, channel, thread, asked, me or "", self.settings.bot)
        reply = self._reply(client, channel, thread, place, user, assistant=assistant)
        outcome = await self.flow.run(
            Question(
                question_text(str(event.get("text") or "")),
                user,
                place,
                private=direct,
                history=history,
                thread=said,
                policy=policy,
                channel=None if direct else channel,
                conversation=None if direct else thread,
            ),
            reply,
        )
        if outcome.continues and outcome.answer is not None:
            self.remember(channel, thread, history, outcome.answer, started=started)

    def _reply(
        self,
        client: AsyncWebClient,
        channel: str,
        thread: str,
        place: Place,
        user: str,
        *,
        stream: bool = True,
        assistant: bool = False,
        solved: str = "",
        key: tuple[str, str] | None = None,
    ) -> ThreadReply:
        """A reply in ``thread``, streamed with Slack's chat streaming API unless it is off or this workspace has
        none (remembered, so a workspace without it costs one failed call, not one per answer)."""
        team = str(place.space or "")
        streams = stream and self.settings.slack.streaming and team not in self._no_streaming

        def refused(error: str) -> None:
            self._no_streaming[team] = error
            logger.info("slack workspace %s has no chat streaming (%s); editing messages instead", team, error)

        pacer = self._pacers.get(team)
        if pacer is None:
            pacer = self._pacers[team] = Pacer()
        return ThreadReply(
            client,
            channel,
            thread,
            asker=user,
            pacer=pacer,
            progress_client=self._progress_client(client),
            stream_to=(team, user) if streams else None,
            stream_refused=refused,
            assistant=assistant,
            solved=solved,
            skipped=(lambda: self.desk.skipped(key)) if key is not None else (lambda: False),
        )

    def _progress_client(self, client: AsyncWebClient) -> AsyncWebClient:
        """The same API and token without the rate-limit retry: a throttled progress edit is skipped, not slept on
        inside the answer."""
        token = str(client.token or "")
        progress = self._progress_clients.get(token)
        if progress is None:
            progress = AsyncWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout)
            self._progress_clients[token] = progress
        return progress

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
        if private or is_dm:
            await ack(SEARCHING)
            await self.flow.run(Question(question, user, place, private=True, policy=policy), PrivateReply(respond))
            return
        await ack()
        name = escape(str(body.get("user_name") or "someone"))

        async def ask_line() -> str:
            asked = await client.chat_postMessage(channel=channel, text=f"*@{name}* asked: {escape(question)}"[:3000])
            return str(asked["ts"])

        reply = CommandReply(
            ask_line,
            lambda thread: self._reply(client, channel, thread, place, user),
            PrivateReply(respond, NOT_IN_CHANNEL),
        )
        outcome = await self.flow.run(Question(question, user, place, policy=policy), reply)
        if outcome.continues and outcome.answer is not None and reply.thread_ts:
            self.remember(channel, reply.thread_ts, (), outcome.answer, started=True)


def _place(body: dict[str, Any], event: dict[str, Any]) -> Place:
    return Place("slack", str(body.get("team_id") or event.get("team") or ""))
