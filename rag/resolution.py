"""What became of a question (issue 24), defined once: the feedback store counts it (``FeedbackStore.resolution``),
``python -m bot report`` and /feedback print it, and /metrics exports it, all from this one query.

A *question* is the first thing one person asked in one thread (a support post, a mention and the thread Docent
answered it in): what the same person asks later in that thread is a follow-up of it, not another question. A
question with no thread recorded (a direct message, an ``/ask``, a row from before threads were recorded) stands
alone. Each question is exactly one of:

- **resolved**: its thread was marked solved ("This solved it", by the asker or a moderator), or the asker voted 👍
  on an answer of the thread (another person's 👍 says the answer helped them, not that the asker's problem is
  solved), or the asker's follow-up in the thread was answered (not refused, not handed off): they moved on to
  the next step, so the first answer did its work;
- **handed off**: not resolved, Docent refused it or handed it off unposted, and a person other than the asker
  (never a bot, never Docent) replied in its thread: people took it over;
- **unresolved**: everything else, including a refusal nobody picked up and an answer nobody reacted to.

Counted per platform, space (server or workspace; none for direct messages) and channel (the channel asked in, a
thread's parent; none in a direct message or on rows from before channels were recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

STATES = ("resolved", "handed_off", "unresolved")


def resolution_sql(answers_in: str) -> str:
    """Counts per (platform, guild_id, channel) of the questions among the answers matching ``answers_in`` (a
    condition on ``a``, with its named parameters), as (platform, guild_id, channel, resolved, handed_off,
    unresolved)."""
    return f"""
WITH q AS (
    SELECT a.id, a.platform, a.guild_id, a.channel, a.thread, a.user_hash, a.refused, a.handed_off
    FROM answers a
    WHERE ({answers_in}) AND (a.thread IS NULL OR NOT EXISTS (
        SELECT 1 FROM answers p
        WHERE p.platform = a.platform AND p.thread = a.thread AND p.user_hash = a.user_hash
          AND (p.asked_at < a.asked_at OR (p.asked_at = a.asked_at AND p.id < a.id))))
), judged AS (
    SELECT q.platform, q.guild_id, q.channel, CASE
        WHEN (q.thread IS NOT NULL AND EXISTS (
                SELECT 1 FROM solved s WHERE s.platform = q.platform AND s.thread = q.thread))
          OR EXISTS (
                SELECT 1 FROM votes v JOIN answers b ON b.id = v.answer_id
                WHERE v.helpful = 1 AND v.user_hash = q.user_hash AND b.platform = q.platform
                  AND (b.id = q.id OR (q.thread IS NOT NULL AND b.thread = q.thread)))
          OR (q.thread IS NOT NULL AND EXISTS (
                SELECT 1 FROM answers f
                WHERE f.platform = q.platform AND f.thread = q.thread AND f.user_hash = q.user_hash
                  AND f.id != q.id AND f.refused = 0 AND f.handed_off = 0))
        THEN 'resolved'
        WHEN (q.refused = 1 OR q.handed_off = 1) AND q.thread IS NOT NULL AND EXISTS (
                SELECT 1 FROM replies r
                WHERE r.platform = q.platform AND r.thread = q.thread AND r.user_hash != q.user_hash)
        THEN 'handed_off'
        ELSE 'unresolved' END AS state
    FROM q
)
SELECT platform, guild_id, channel,
    sum(state = 'resolved'), sum(state = 'handed_off'), sum(state = 'unresolved')
FROM judged
GROUP BY platform, guild_id, channel
ORDER BY count(*) DESC, platform, guild_id, channel
"""


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass(frozen=True)
class Resolution:
    """The questions of one platform, space and channel by what became of them (``rag.resolution``)."""

    platform: str
    space: int | str | None
    channel: str | None
    questions: int
    resolved: int
    handed_off: int
    unresolved: int
    resolved_rate: float
    handed_off_rate: float
    unresolved_rate: float

    @classmethod
    def of(
        cls,
        platform: str,
        space: int | str | None,
        channel: str | None,
        resolved: int,
        handed_off: int,
        unresolved: int,
    ) -> Resolution:
        questions = resolved + handed_off + unresolved
        return cls(
            platform,
            space,
            channel,
            questions,
            resolved,
            handed_off,
            unresolved,
            _rate(resolved, questions),
            _rate(handed_off, questions),
            _rate(unresolved, questions),
        )

    def line(self) -> str:
        """ "12 questions: 5 resolved (42%), 2 handed off (17%), 5 unresolved (42%)"."""
        plural = "" if self.questions == 1 else "s"
        return (
            f"{self.questions} question{plural}: {self.resolved} resolved ({self.resolved_rate:.0%}), "
            f"{self.handed_off} handed off ({self.handed_off_rate:.0%}), "
            f"{self.unresolved} unresolved ({self.unresolved_rate:.0%})"
        )


def total(rows: list[Resolution], platform: str = "", space: int | str | None = None) -> Resolution:
    """The sum of ``rows`` (their channels together), labelled ``platform`` and ``space``."""
    return Resolution.of(
        platform,
        space,
        None,
        sum(r.resolved for r in rows),
        sum(r.handed_off for r in rows),
        sum(r.unresolved for r in rows),
    )
