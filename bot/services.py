"""What every front-end in one process shares, wired once in ``__main__`` and handed to Discord and Slack: one
admission queue (there is one engine), the answer stream with its throttled progress, the feedback store and the
records being written to it, the indexer with its single-flight guard and periodic run, the engine watchdog, and
the background tasks they own. The platforms only render and deliver."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any

from bot.admission import Admission, Refusal
from bot.channels import Channels
from bot.followup import FollowUps, ThreadWatch
from bot.tasks import OwnedTasks
from indexer.lock import IndexerBusy
from indexer.progress import line
from indexer.runner import Indexer
from indexer.sources import DocumentSource
from rag.errors import Unlearnable, describe, new_error_id
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.learned import SOURCE_ID as LEARNED_SOURCE
from rag.learned import LearnedStore, Limits
from rag.metrics import Metrics
from rag.models import Answer, IndexReport
from rag.pipeline import Answering
from rag.scope import SearchScope, is_community, visible_communities
from rag.settings import ChannelPolicy, Settings

logger = logging.getLogger(__name__)

SourceFactory = Callable[[str | None], list[DocumentSource]]
Say = Callable[[str], Awaitable[None]]
ENGINE_DIED = 3  # exit code: the engine died and the process should be restarted
ENGINE_CHECK_S = 2.0
PROGRESS_EVERY_S = 2.0
RECORD_WAIT_S = 2.0  # a vote waits this long for its answer's record; platforms want an answer within 3 s

SEARCHING = "🔎 Searching the docs…"
SKIP = "🚫"  # a moderator's reaction that keeps Docent from answering a new question unasked (Slack: no_entry_sign)


def queued(ahead: int) -> str:
    return f"⏳ Lots of questions right now; you're in the queue ({ahead} ahead)…"


@dataclass
class SupportThread:
    """A question answered (or handed off) unasked in a support channel. Only its asker's follow-ups get more
    answers; once it needed help (hand-off, refusal, 👎), a trusted member's answer there is offered for learning."""

    key: str  # the thread, or the question's message when it has none
    asker: int | str
    question: str
    needs_help: bool = False


@dataclass(frozen=True)
class Place:
    """Where a question was asked: the platform and its server or workspace (None: a direct message)."""

    platform: str
    space: int | str | None

    @property
    def word(self) -> str:
        return "workspace" if self.platform == "slack" else "server"


class Services:
    """Shared by the front-ends of one process; ``start`` is idempotent so whoever runs first starts it."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Answering,
        indexer: Indexer,
        sources: SourceFactory,
        feedback: FeedbackStore,
        *,
        metrics: Metrics | None = None,
        learned: LearnedStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: the time follow-ups are due by (tests move it instead of waiting)."""
        self.settings = settings
        self.pipeline = pipeline
        self.indexer = indexer
        self.sources = sources
        self.feedback = feedback
        self.metrics = metrics or Metrics()
        bot = settings.bot
        self.admission = Admission(
            concurrency=bot.max_concurrent_answers,
            max_queue=bot.max_queue,
            cooldown_s=bot.user_cooldown_s,
            guild_per_minute=bot.guild_questions_per_minute,
        )
        self.channels = Channels(settings)
        # Who speaks in the threads of recorded questions; what it keeps is written by owned tasks.
        self.watch = ThreadWatch(feedback, lambda write: self.spawn(write, name="thread-watch", finish_on_close=True))
        self.followups = FollowUps(feedback, clock=clock)  # "Did this solve it?"; platforms register posters
        # Opened off the loop by __main__; tests and benchmarks may let it open here.
        self._owns_learned = learned is None
        self.learned = learned or LearnedStore(settings.data_dir / LEARNED_FILE, Limits.of(settings))
        self.index_guard = asyncio.Lock()  # one index run in this process: /reindex (any platform) or the periodic run
        self.last_index_report: IndexReport | None = None
        self.stop = asyncio.Event()  # set when the process should stop (a signal, or the engine died)
        self.exit_code = 0
        self._started = False
        self._owned = OwnedTasks()
        self._reindexed_at: dict[Place, float] = {}  # when each server's or workspace's last /reindex started
        self._recording: dict[str, asyncio.Task[None]] = {}  # answer id -> its feedback record being written
        self._posting: dict[str, asyncio.Event] = {}  # answer id -> set once it is posted

    # -- lifecycle and owned tasks --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.settings.indexer.schedule_minutes > 0:
            self.spawn(self._periodic_index(), name="periodic-index")
        self.spawn(self._watch_engine(), name="engine-watchdog")
        if any(policy.followup_after_s > 0 for policy in self.settings.channels.values()):
            self.spawn(self.followups.run(), name="follow-ups")

    async def __aenter__(self) -> Services:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str, finish_on_close: bool = False) -> asyncio.Task[None]:
        """An owned task (see ``OwnedTasks``): cancelled on close, or awaited when ``finish_on_close``."""
        return self._owned.spawn(coro, name=name, finish_on_close=finish_on_close)

    async def close(self) -> None:
        await self._owned.close()
        if self._owns_learned:
            self.learned.close()

    async def _watch_engine(self) -> None:
        """A dead vLLM engine can't be revived in-process: stop with ENGINE_DIED so the supervisor (Docker's
        restart policy, systemd) starts a fresh process. Until then answers fail fast. An engine still starting
        is left to start; one that fails to start stops the process, whose opener raises why (exit code 2)."""
        try:
            await self.pipeline.wait_ready()
        except Exception as exc:
            logger.info("stopping: the language model did not start (%s)", type(exc).__name__)
            self.stop.set()
            return
        while True:
            await asyncio.sleep(ENGINE_CHECK_S)
            if not self.pipeline.healthy():
                logger.error(
                    "the language model engine died; exiting (code %d) for the supervisor to restart", ENGINE_DIED
                )
                self.exit_code = ENGINE_DIED
                self.stop.set()
                return

    def health(self, platforms: dict[str, bool]) -> dict[str, Any]:
        """What /healthz reports: ok only when every running platform is connected and the engine is up and alive;
        starting while the engine starts (it is alive, not ready)."""
        engine = self.pipeline.healthy()
        ready = self.pipeline.ready
        last = self.metrics.last_index
        healthy = engine and ready and all(platforms.values())
        status = "starting" if engine and not ready else "ok" if healthy else "unhealthy"
        return {
            "status": status,
            **{f"{name}_ready": up for name, up in platforms.items()},
            "engine_alive": engine,
            "engine_ready": ready,
            "indexing": self.indexing(),
            "last_index_run": None if last is None else dataclasses.asdict(last),
            "queue": self.admission.waiting,
        }

    # -- indexing --------------------------------------------------------------------------------------------------

    def indexing(self) -> bool:
        return self.index_guard.locked() or self.indexer.lock.locked()

    async def _periodic_index(self) -> None:
        interval = self.settings.indexer.schedule_minutes * 60
        while True:
            await self.index_once()
            await asyncio.sleep(interval)

    async def index_once(self) -> IndexReport | None:
        """One scheduled run; skipped (one log line) while a /reindex runs here or another process indexes."""
        if self.index_guard.locked():
            logger.info("periodic index run skipped: a /reindex is running")
            return None
        async with self.index_guard:
            try:
                sources = await asyncio.to_thread(self.sources, None)  # lists the community sources from SQLite
                self.last_index_report = await self.indexer.run(sources, wait=False)
            except IndexerBusy:
                logger.info("periodic index run skipped: another process is indexing")
                return None
            except Exception:
                logger.exception(
                    "periodic index run failed; next try in %d minutes", self.settings.indexer.schedule_minutes
                )
                return None
        return self.last_index_report

    def reindex_refusal(self, place: Place, source_id: str | None) -> str | None:
        """Why /reindex can't start now (already running, this space's cooldown, an unknown source), or None."""
        if self.index_guard.locked():
            progress = self.indexer.progress
            seen = progress.pages_seen if progress else 0
            return f"A reindex is already running ({seen} pages read so far)."
        last = self._reindexed_at.get(place)
        wait = 0.0 if last is None else self.settings.bot.reindex_cooldown_s - (time.monotonic() - last)
        if wait > 0:
            return f"⏳ This {place.word} reindexed recently; try again in {wait:.0f}s."
        if source_id is not None and not is_community(source_id) and not self.sources(source_id):
            return f"No configured source has id `{source_id}`."
        return None

    async def reindex(self, place: Place, source_id: str | None, *, on_start: Say, progress: Say) -> str:
        """Run /reindex and return the final word. Call right after ``reindex_refusal`` said None, with no await in
        between: an unlocked lock is taken without suspending, so two admins at once cannot both start a run.
        ``on_start`` gets the first line, ``progress`` a line every ``PROGRESS_EVERY_S``."""
        async with self.index_guard:
            self._reindexed_at[place] = time.monotonic()
            await on_start("⏳ Reindexing…")
            pump = asyncio.create_task(self._pump_progress(progress), name="reindex-progress")
            try:
                report = await self.indexer.run(await asyncio.to_thread(self.sources, source_id), wait=False)
            except IndexerBusy as exc:
                logger.info("reindex refused: %s", exc)
                return describe(exc, new_error_id())
            except Exception as exc:
                error_id = new_error_id()
                logger.warning("reindex failed (error id %s)", error_id, exc_info=True)
                return describe(exc, error_id)
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
            self.last_index_report = report
            return f"✅ Reindex done: {report.summary()}"

    async def _pump_progress(self, progress: Say) -> None:
        """The same numbers as ``python -m indexer``: pages read of pages known, chunks, rate, ETA."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            report = self.indexer.progress
            if report is not None:
                elapsed = time.monotonic() - started
                await progress(f"⏳ Reindexing… {line(report, report.chunks_written / elapsed, elapsed)}")

    async def solved(self, place: Place, channel: str, thread: str) -> bool:
        """Mark a support thread solved (recorded once, counted in the metrics)."""
        new = await self.feedback.solved(place.platform, thread, channel=channel, guild_id=place.space)
        if new:
            self.metrics.support.labels(place.platform, "solved").inc()
        return new

    async def index_community(self) -> None:
        """Index the approved community answers now (after an approval or a rejection); if an index run is
        going, the next periodic run picks them up."""
        if self.index_guard.locked():
            return
        async with self.index_guard:
            try:
                await self.indexer.run(await asyncio.to_thread(self.sources, LEARNED_SOURCE), wait=False)
            except Exception as exc:
                logger.warning("indexing the community answers failed: %s", exc)

    async def capture(self, thread: SupportThread, **message: Any) -> None:
        """A trusted member answered in a thread that needed help: offer it for learning (best effort)."""
        try:
            pair = await self.learned.capture(
                question=thread.question, asker_id=thread.asker, thread=thread.key, **message
            )
            logger.info("captured community answer %d for approval", pair)
        except Unlearnable as exc:
            logger.info("a community answer was not stored: %s", exc)
        except Exception:
            logger.warning("could not store a community answer", exc_info=True)

    # -- answering -------------------------------------------------------------------------------------------------

    def scope(self, place: Place, policy: ChannelPolicy | None) -> SearchScope:
        """What a question asked in ``place`` may cite: the channel's sources (all, unless its policy limits them),
        and only the community answers approved in this server or workspace (or in those ``learned.shared_spaces``
        makes one community with it)."""
        communities = visible_communities(place.platform, place.space, self.settings.learned.shared_spaces)
        return SearchScope(tuple(policy.sources) if policy else (), communities)

    def admit(self, user: Hashable, place: Place) -> Refusal | None:
        """Admission for a question: a user is keyed within its platform, so ids of two platforms never meet.
        While the engine starts nothing is counted (the answering flow waits for it first)."""
        if not self.pipeline.ready:
            return None
        return self.admission.refusal(
            (place.platform, user), (place.platform, place.space) if place.space else None, space=place.word
        )

    def record(
        self,
        answer: Answer,
        user: int | str,
        place: Place,
        *,
        private: bool,
        support: tuple[str, str] | None = None,
        where: tuple[str | None, str | None] = (None, None),
        handed_off: bool = False,
        followup_after_s: float = 0.0,
        messages: tuple[Hashable, ...] = (),
    ) -> None:
        """Record an answer that reached the user (or, unsure and unasked, was ``handed_off``), off the reply path:
        an owned task that is finished, not cancelled, on close. ``support`` is the (channel, thread) of a question
        nobody asked Docent, in a support channel; ``where`` the (channel, thread) of one someone asked (see
        ``Question.where``). ``followup_after_s``: ask "Did this solve it?" in the thread after that long without
        a word from the asker. ``messages``: the ids of the messages that carry the answer."""
        task = self.spawn(
            self._record(answer, user, place, private, support, where, handed_off, followup_after_s, messages),
            name="record-answer",
            finish_on_close=True,
        )
        self._recording[answer.request_id] = task
        task.add_done_callback(lambda _: self._recording.pop(answer.request_id, None))

    async def _record(
        self,
        answer: Answer,
        user: int | str,
        place: Place,
        private: bool,
        support: tuple[str, str] | None,
        where: tuple[str | None, str | None],
        handed_off: bool,
        followup_after_s: float,
        messages: tuple[Hashable, ...],
    ) -> None:
        channel, thread = support or where
        if support is not None:
            self.metrics.support.labels(place.platform, "handed_off" if answer.unsure else "answered").inc()
        if thread is not None:  # before the write: a reply may come while it is written
            needs_person = answer.refused or handed_off
            ids = tuple(str(m) for m in messages)
            self.watch.watch(place.platform, thread, user, needs_person=needs_person, messages=ids)
        try:
            answer_id = await self.feedback.record_answer(
                answer,
                user,
                guild_id=place.space,
                private=private,
                platform=place.platform,
                channel=channel,
                thread=thread,
                unasked=support is not None,
                handed_off=handed_off,
            )
            if followup_after_s > 0 and channel is not None and thread is not None:
                await self.followups.schedule(answer_id, place.platform, channel, thread, followup_after_s)
        except Exception:
            logger.warning("request %s was answered but not recorded for feedback", answer.request_id, exc_info=True)

    async def refresh_metrics(self) -> None:
        """Read the resolution figures (``rag.resolution``) from the store into /metrics, before a scrape: the
        metrics then say what the store and ``python -m bot report`` say."""
        self.metrics.resolution(await self.feedback.resolution())

    @contextlib.asynccontextmanager
    async def posting(self, answer_id: str) -> AsyncIterator[None]:
        """While an answer is being posted its vote buttons may already be live: a vote on it waits (see
        ``recorded``) until the answer is posted and its record written."""
        done = asyncio.Event()
        self._posting[answer_id] = done
        try:
            yield
        finally:
            done.set()
            self._posting.pop(answer_id, None)

    async def records_written(self) -> None:
        """Wait for every pending answer record and reply heard (reports and tests read after this)."""
        await asyncio.gather(*list(self._recording.values()), return_exceptions=True)
        await self.watch.written()

    async def recorded(self, answer_id: str) -> None:
        """Let an answer's record land before it is voted on: the buttons are live before the record is written."""
        deadline = time.monotonic() + RECORD_WAIT_S
        posting = self._posting.get(answer_id)
        if posting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(posting.wait(), timeout=RECORD_WAIT_S)
        pending = self._recording.get(answer_id)
        if pending is not None:
            await asyncio.wait({pending}, timeout=max(0.0, deadline - time.monotonic()))

    async def vote(self, answer_id: str, user: int | str, helpful: bool, place: Place) -> bool:
        """Record one person's vote on an answer; False if the answer is unknown (too old, or never recorded)."""
        await self.recorded(answer_id)
        recorded = await self.feedback.vote(answer_id, user, helpful, guild_id=place.space, platform=place.platform)
        if recorded:
            self.metrics.vote(helpful)
        logger.info("feedback %s on %s (%s)", "up" if helpful else "down", answer_id, place.platform)
        return recorded
