"""Settings sources: Docker secrets supply tokens without putting them in the environment; keys that moved are
refused by name wherever they are set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from rag.settings import RetrievalSettings, Settings


def test_token_from_a_docker_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCENT_DISCORD__TOKEN", raising=False)
    (tmp_path / "docent_discord__token").write_text("from-a-secret\n")
    (tmp_path / "docent_milvus__token").write_text("root:Milvus")

    settings = Settings(_secrets_dir=tmp_path)

    assert settings.discord.token is not None
    assert settings.discord.token.get_secret_value() == "from-a-secret"
    assert settings.milvus.token is not None and settings.milvus.token.get_secret_value() == "root:Milvus"


def test_environment_wins_over_a_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docent_discord__token").write_text("from-a-secret")
    monkeypatch.setenv("DOCENT_DISCORD__TOKEN", "from-the-environment")

    settings = Settings(_secrets_dir=tmp_path)

    assert settings.discord.token is not None
    assert settings.discord.token.get_secret_value() == "from-the-environment"


def test_a_missing_secrets_dir_is_fine(tmp_path: Path) -> None:
    Settings(_secrets_dir=tmp_path / "absent")


def test_the_tuning_section_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCENT_TUNING__RRF_K", "20")
    monkeypatch.setenv("DOCENT_TUNING__WINDOW_CHUNKS", "true")

    settings = Settings()

    assert (settings.tuning.rrf_k, settings.tuning.window_chunks) == (20, True)


@pytest.mark.parametrize(
    ("variable", "says"),
    [
        ("DOCENT_RETRIEVAL__RRF_K", "retrieval.rrf_k moved to tuning.rrf_k (DOCENT_TUNING__RRF_K"),
        ("DOCENT_RETRIEVAL__MIN_SCORE", "retrieval.min_score moved to tuning.min_score (DOCENT_TUNING__MIN_SCORE"),
        ("DOCENT_INDEXER__WINDOW_CHUNKS", "indexer.window_chunks moved to tuning.window_chunks"),
        ("DOCENT_LLM__IGNORE_EOS", "llm.ignore_eos is not a setting"),
    ],
)
def test_a_key_that_left_its_section_is_refused_by_name(
    variable: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sections ignore unknown keys: without this, an old variable would silently stop doing anything."""
    monkeypatch.setenv(variable, "1")
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings()


def test_an_old_key_in_a_config_file_or_in_code_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text("[retrieval]\ntop_k = 4\npage_bonus = 0.3\n")

    class FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=[tmp_path / "settings.toml"])

    with pytest.raises(ValidationError, match=re.escape("retrieval.page_bonus moved to tuning.page_bonus")):
        FromFile()
    with pytest.raises(ValidationError, match=re.escape("retrieval.min_score moved to tuning.min_score")):
        RetrievalSettings(min_score=0.2)
    with pytest.raises(ValidationError, match=re.escape("indexer.window_chars moved")):
        Settings(indexer={"window_chars": 256})
    assert Settings(retrieval={"top_k": 4}, tuning={"page_bonus": 0.3}).tuning.page_bonus == 0.3
