"""The salt of the user-id hashes is kept apart from the hashes, and what Docent stores is readable by its own user
only: a copy of a database alone must not let anyone holding a member list match hashes to members."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag.feedback import FeedbackStore
from rag.learned import LearnedStore

OLD_SALT = "5a17ed0f0e1d1a7a5a17ed0f0e1d1a7a"


def feedback_hash(store: Any) -> str:
    return str(store.hash_user(7, "discord"))


def learned_hash(store: Any) -> str:
    return str(store.hash_user("discord", 7))


# (file name, opener, a user's hash as it was computed before the salt moved, that hash from an open store)
STORES = [
    pytest.param(
        "feedback.sqlite3",
        FeedbackStore,
        hashlib.sha256(f"{OLD_SALT}:7".encode()).hexdigest()[:24],
        feedback_hash,
        id="feedback",
    ),
    pytest.param(
        "learned.sqlite3",
        LearnedStore,
        hashlib.sha256(f"{OLD_SALT}:discord:7".encode()).hexdigest()[:24],
        learned_hash,
        id="learned",
    ),
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored_bytes(path: Path) -> bytes:
    """The database as it sits on disk, write-ahead log included (where a deleted row can linger)."""
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


@pytest.mark.parametrize(("name", "opener", "old_hash", "hash_of"), STORES)
def test_an_older_databases_salt_moves_out_of_it_and_hashes_stay_the_same(
    tmp_path: Path, name: str, opener: Callable[[Path], Any], old_hash: str, hash_of: Callable[[Any], str]
) -> None:
    path = tmp_path / "data" / name
    path.parent.mkdir()
    with sqlite3.connect(path) as db:  # as every release before kept it: the salt beside the hashes
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('salt', ?)", (OLD_SALT,))
    db.close()

    store = opener(path)
    assert hash_of(store) == old_hash, "votes and forget keep matching what was stored before"
    store.close()
    assert OLD_SALT.encode() not in stored_bytes(path), "not in the database, nor in its free pages or log"
    salts = path.parent / "salts.json"
    assert json.loads(salts.read_text())[name] == OLD_SALT and mode(salts) == 0o600

    again = opener(path)
    assert hash_of(again) == old_hash
    again.close()


@pytest.mark.parametrize(("name", "opener", "old_hash", "hash_of"), STORES)
def test_a_new_database_is_private_and_never_holds_its_salt(
    tmp_path: Path, name: str, opener: Callable[[Path], Any], old_hash: str, hash_of: Callable[[Any], str]
) -> None:
    path = tmp_path / "data" / name
    store = opener(path)
    first = hash_of(store)
    store.close()
    salt = json.loads((path.parent / "salts.json").read_text())[name]
    assert salt.encode() not in stored_bytes(path)
    assert mode(path.parent) == 0o700 and mode(path) == 0o600 and mode(path.parent / "salts.json") == 0o600
    assert all(mode(p) == 0o600 for p in path.parent.glob(f"{name}*"))
    again = opener(path)
    assert hash_of(again) == first != old_hash
    again.close()


def test_each_database_keeps_its_own_salt_in_one_file(tmp_path: Path) -> None:
    feedback = FeedbackStore(tmp_path / "feedback.sqlite3")
    learned = LearnedStore(tmp_path / "learned.sqlite3")
    feedback.close()
    learned.close()
    salts = json.loads((tmp_path / "salts.json").read_text())
    assert set(salts) == {"feedback.sqlite3", "learned.sqlite3"} and len(set(salts.values())) == 2


def test_an_existing_database_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    sqlite3.connect(path).close()
    path.chmod(0o644)  # as SQLite created it before
    FeedbackStore(path).close()
    assert mode(path) == 0o600
