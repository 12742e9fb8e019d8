"""What SQLite keeps for the feedback database's reads (issue 24): indexes, and the pages answers cited, tallied.

The dashboard (``rag.stats``) reads 100k questions in well under its 300 ms by scanning small indexes instead of the
table's rows, whose answers' text is most of the file: questions by day (with each space's totals), by space (votes;
the report's per-space queries use it too), support channels', by latency and by their words.

Citations are tallied as answers are written: ``cited`` holds, per page and space, how many answers cited it, kept by
triggers on ``answers``, so counting them never parses every answer's JSON. A refusal's "closest pages" are not
citations; a page counts once per answer, however many of its sections the answer cited, and one without an address
is told by its title. The triggers keep the tally through every change: an
answer written, replaced (``INSERT OR REPLACE``: with SQLite's default ``recursive_triggers = OFF`` the replaced row's
delete fires no trigger, so the insert's own ``BEFORE`` trigger takes its citations off), changed or deleted
(``forget``).

``prepare`` makes them once the columns they cover exist, in one transaction; a database from before them gets its
answers' citations tallied then.
"""

from __future__ import annotations

import sqlite3

_PAGE = "CASE WHEN {url} <> '' THEN {url} ELSE 'title:' || {title} END"
# A citation names a section ("https://docs/page#section", "Page › Section", rag.citations): the page is its address
# without the fragment, and its title before the heading.
_CITED_URL = "coalesce(json_extract(value, '$.url'), '')"
_CITED_TITLE = "coalesce(json_extract(value, '$.title'), '')"
_URL = (
    f"CASE WHEN instr({_CITED_URL}, '#') THEN substr({_CITED_URL}, 1, instr({_CITED_URL}, '#') - 1) "
    f"ELSE {_CITED_URL} END"
)
_TITLE = (
    f"CASE WHEN instr({_CITED_TITLE}, ' › ') THEN substr({_CITED_TITLE}, 1, instr({_CITED_TITLE}, ' › ') - 1) "
    f"ELSE {_CITED_TITLE} END"
)


def _sources(row: str) -> str:
    return f"json_each(CASE WHEN json_valid({row}.sources) THEN {row}.sources ELSE '[]' END)"


def _add(row: str) -> str:
    """Count ``row``'s citations, once per page (an answer citing a page twice cited it once)."""
    return f"""
    INSERT INTO cited (page, title, url, platform, guild_id, answers)
        SELECT {_PAGE.format(url=_URL, title=_TITLE)}, max({_TITLE}), max({_URL}), {row}.platform,
            coalesce({row}.guild_id, ''), 1
        FROM {_sources(row)} WHERE {row}.refused = 0 GROUP BY 1
        ON CONFLICT (page, platform, guild_id) DO UPDATE SET answers = answers + 1, title = excluded.title;"""


def _take(row: str) -> str:
    """Take ``row``'s citations off the tally (a page no answer cites any more leaves it)."""
    space = f"platform = {row}.platform AND guild_id = coalesce({row}.guild_id, '')"
    pages = f"SELECT {_PAGE.format(url=_URL, title=_TITLE)} FROM {_sources(row)} WHERE {row}.refused = 0"
    return f"""
    UPDATE cited SET answers = answers - 1 WHERE {space} AND page IN ({pages});
    DELETE FROM cited WHERE {space} AND answers <= 0;"""


SCHEMA = f"""
CREATE INDEX IF NOT EXISTS answers_day
    ON answers(CAST(asked_at / 86400 AS INTEGER), platform, guild_id, refused, private);
CREATE INDEX IF NOT EXISTS answers_space ON answers(platform, guild_id, unasked, channel, refused, private, id);
CREATE INDEX IF NOT EXISTS answers_support ON answers(platform, guild_id, channel, refused)
    WHERE unasked = 1 AND channel IS NOT NULL;
CREATE INDEX IF NOT EXISTS answers_latency ON answers(latency_ms, platform, guild_id);
CREATE INDEX IF NOT EXISTS answers_words
    ON answers(lower(trim(question)), private, refused, asked_at, platform, guild_id, question);
CREATE TABLE IF NOT EXISTS cited (
    page TEXT NOT NULL,  -- its address, or 'title:' and its title for a page without one
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    platform TEXT NOT NULL,
    guild_id INTEGER NOT NULL,  -- as answers.guild_id; '' for direct messages
    answers INTEGER NOT NULL,  -- answers that cited it
    PRIMARY KEY (page, platform, guild_id)
);
CREATE TRIGGER IF NOT EXISTS answers_cite AFTER INSERT ON answers BEGIN{_add("new")}
END;
CREATE TRIGGER IF NOT EXISTS answers_replace BEFORE INSERT ON answers BEGIN
    UPDATE cited SET answers = answers - 1 WHERE (page, platform, guild_id) IN (
        SELECT {_PAGE.format(url=_URL, title=_TITLE)}, a.platform, coalesce(a.guild_id, '')
        FROM answers a, {_sources("a")} WHERE a.id = new.id AND a.refused = 0);
    DELETE FROM cited WHERE answers <= 0;
END;
CREATE TRIGGER IF NOT EXISTS answers_change AFTER UPDATE OF sources, refused, platform, guild_id ON answers
BEGIN{_take("old")}{_add("new")}
END;
CREATE TRIGGER IF NOT EXISTS answers_uncite AFTER DELETE ON answers BEGIN{_take("old")}
END;
"""

_BACKFILL = f"""
INSERT INTO cited (page, title, url, platform, guild_id, answers)
    SELECT page, max(title), max(url), platform, guild_id, count(*) FROM (
        SELECT {_PAGE.format(url=_URL, title=_TITLE)} AS page, max({_TITLE}) AS title, max({_URL}) AS url,
            a.platform AS platform, coalesce(a.guild_id, '') AS guild_id
        FROM answers a, {_sources("a")} WHERE a.refused = 0 GROUP BY a.id, page
    ) GROUP BY page, platform, guild_id;
"""


CACHE_KIB = 32 * 1024  # the connection's page cache: the indexes a dashboard page reads stay in memory


def prepare(db: sqlite3.Connection) -> None:
    """The indexes, the tally and its triggers, in one transaction; an older database's citations tallied."""
    new = not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cited'").fetchone()
    db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}{_BACKFILL if new else ''}COMMIT;")
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
