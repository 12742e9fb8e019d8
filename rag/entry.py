"""What every command-line entry point shares: loading settings and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from rag.errors import ConfigError, DocentError
from rag.settings import Settings


def load_settings() -> Settings | None:
    """Settings, or None after printing which key is wrong (pydantic's message names it)."""
    try:
        return Settings()
    except Exception as exc:
        print(f"Invalid settings: {exc}", file=sys.stderr)
        return None


def run_command(main: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; configuration problems exit 2, other known failures 1, Ctrl-C 130."""
    try:
        return asyncio.run(main)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DocentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
