"""The project's exceptions, and the one place that turns them into words for users."""

from __future__ import annotations

import secrets


class DocentError(Exception):
    """Base of everything we raise on purpose."""

    user_message = "Something went wrong while answering."
    shows_error_id = True  # False for expected refusals, which are not failures to look up in the log


class BadQuestion(DocentError):
    """The question cannot be answered as asked (empty, too long)."""

    shows_error_id = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


class Unlearnable(DocentError):
    """A community answer Docent will not store or approve as given (an empty question or answer, or one over the
    limits): the message says why, to whoever offered or edited it."""

    shows_error_id = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


class Changed(DocentError):
    """A community answer is no longer the version a decision was made on (its author added to it since it was
    shown): what was reviewed is not what would be indexed, so it must be reviewed again."""

    shows_error_id = False
    user_message = "That answer changed since it was shown; list it again to review it as it is now."


class StoreUnavailable(DocentError):
    user_message = "The docs index is unavailable right now. Please try again in a minute."


class StoreInUse(StoreUnavailable):
    """A Milvus Lite database another process has open: Lite serves one process at a time."""


class IndexMissing(DocentError):
    """Nothing has been indexed yet: an operator's job, said plainly."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = "No docs are indexed yet. An admin can run /reindex (or `python -m indexer`)."


class EngineUnavailable(DocentError):
    user_message = "The answer engine is unavailable right now. Please try again in a minute."


class GenerationTimeout(DocentError):
    user_message = "Answering took too long, so I stopped. Please try again or ask more specifically."


class StartingUp(DocentError):
    """The engine was not up in time for a question (``bot.startup_wait_s``): expected, not a failure to look up in
    the log."""

    shows_error_id = False
    user_message = "Sorry, I'm still starting up and couldn't answer in time. Please ask again in a minute."


class Overloaded(DocentError):
    user_message = "I'm answering a lot of questions right now. Please ask again in a minute."


class Skipped(DocentError):
    """A moderator marked a question nobody asked Docent with the skip reaction before its answer was posted."""

    shows_error_id = False
    user_message = ""


class ConfigError(DocentError):
    """Settings that cannot work; the message says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


def new_error_id() -> str:
    """A short id shown to the user and logged, so a report can be matched to the log."""
    return secrets.token_hex(3)


def describe(exc: BaseException, error_id: str) -> str:
    """The single user-facing rendering of any failure."""
    if isinstance(exc, DocentError) and not exc.shows_error_id:
        return exc.user_message
    message = exc.user_message if isinstance(exc, DocentError) else "Something went wrong while answering."
    return f"{message} (error id `{error_id}`)"
