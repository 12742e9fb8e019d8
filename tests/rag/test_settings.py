"""Settings sources: Docker secrets supply tokens without putting them in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.settings import Settings


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
