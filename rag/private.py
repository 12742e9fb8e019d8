"""What Docent keeps about people is readable by its own user only, and the salt of the user-id hashes lives apart
from the hashes.

A hash of a user id is only as private as its salt: whoever has both can hash every id of a member list and match
them. So each database's salt is kept in ``salts.json`` beside it (0600), never inside it, and a copy of a database
alone (a backup, a file attached to a bug report) does not tell who asked what. Directories made here are 0700 and
database files 0600; a database of an older release, created 0644 with its salt in its ``meta`` table, is made
private and its salt moved out when it is opened, with its hashes unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from rag.errors import ConfigError

logger = logging.getLogger(__name__)

SALTS_FILE = "salts.json"
_COMPANIONS = ("-wal", "-shm", "-journal")  # SQLite creates them with the database's mode; older ones may be 0644


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing: the directory itself 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists and only its owner can read it: created empty as 0600 (SQLite opens an empty file as
    a new database, and its log files take the database's mode), or made 0600 if an older release left it 0644."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in _COMPANIONS)):
        try:
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(0o600)
                logger.info("made %s readable by its owner only", file)
        except FileNotFoundError:
            continue
        except OSError as exc:  # another user's file: say so, and go on
            logger.warning("could not make %s private: %s", file, exc)


def user_salt(db: sqlite3.Connection, path: Path) -> str:
    """The salt of the user-id hashes of the database at ``path`` (open as ``db``, with a ``meta`` table), from
    ``salts.json`` beside it. An older database's own salt is moved there (its hashes stay the same) and erased from
    it, free pages and write-ahead log included; a new database gets a new salt."""
    file = path.parent / SALTS_FILE
    with _locked(path.parent):  # another process opening a database here at the same time reads what this one wrote
        kept = _read(file)
        row = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        if row is None and path.name in kept:
            return kept[path.name]
        if row is not None:
            salt = str(row[0])
            if kept.get(path.name, salt) != salt:  # a database restored from elsewhere: its hashes use its own salt
                logger.warning("%s brings its own salt: it replaces the one %s held for it", path, file)
        else:
            if db.execute("SELECT 1 FROM meta WHERE key = 'salt_kept_in'").fetchone():
                logger.warning(
                    "%s has no salt for %s: a new one is made, so the user hashes stored so far match nobody any more "
                    "(forget cannot find them, votes are not de-duplicated against them)",
                    file,
                    path,
                )
            salt = secrets.token_hex(16)
        kept[path.name] = salt
        _write(file, kept)
        if row is not None:
            _erase_salt(db)
        else:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('salt_kept_in', ?)", (SALTS_FILE,))
        return salt


def _erase_salt(db: sqlite3.Connection) -> None:
    """Delete the salt from ``meta`` so that no copy of it is left in the file: the freed space zeroed (secure
    delete), the log's older page images checkpointed away."""
    db.execute("PRAGMA secure_delete = ON")
    db.execute("DELETE FROM meta WHERE key = 'salt'")
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('salt_kept_in', ?)", (SALTS_FILE,))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        yield
    finally:
        os.close(fd)


def _read(file: Path) -> dict[str, str]:
    try:
        text = file.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("not an object of salts")
    except ValueError as exc:
        raise ConfigError(
            f"{file} cannot be read ({exc}): restore it from a backup. Without it the user hashes stored so far match "
            "nobody (forget cannot find them); delete it only to start over."
        ) from exc
    if stat.S_IMODE(file.stat().st_mode) & 0o077:
        file.chmod(0o600)
    return {str(k): v for k, v in data.items()}


def _write(file: Path, salts: dict[str, str]) -> None:
    """Replace ``file`` at once (a crash leaves the old one or the new one), 0600 from the start."""
    temporary = file.with_name(f".{file.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its mode otherwise
    with os.fdopen(fd, "w") as out:
        json.dump(salts, out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, file)
    directory = os.open(file.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
