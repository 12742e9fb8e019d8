"""Deployment files: no secrets baked into images or compose files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_docker_context_excludes_env_files_at_any_depth() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "**/.env" in patterns


def test_compose_has_no_hard_coded_minio_credentials() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    credentials = {
        name: value
        for service in compose["services"].values()
        for name, value in (service.get("environment") or {}).items()
        if name.startswith("MINIO_") and ("KEY" in name or "SECRET" in name)
    }
    assert credentials, "MinIO and Milvus must be given credentials"
    for name, value in credentials.items():
        # ${VAR:?message}: compose refuses to start, with the message, when .env does not set it.
        assert re.fullmatch(r"\$\{MINIO_(ACCESS|SECRET)_KEY:\?[^}]+\}", str(value)), f"{name} = {value!r}"
