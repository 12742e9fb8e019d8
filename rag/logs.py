"""Logging is configured once, by whichever ``__main__`` runs."""

from __future__ import annotations

import logging

_NOISY = ("discord.gateway", "discord.http", "pymilvus", "httpx", "urllib3", "sentence_transformers", "filelock")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
