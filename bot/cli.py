"""`python -m bot ask "QUESTION"`: the bot's exact pipeline, in a terminal."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from bot.text import printable
from rag.errors import DocentError, describe, new_error_id
from rag.models import Answer
from rag.runtime import open_core
from rag.settings import Settings
from rag.starting import Progress


def _style(code: str, text: str, stream: TextIO) -> str:
    return f"\033[{code}m{text}\033[0m" if stream.isatty() else text


def format_answer(answer: Answer, stream: TextIO = sys.stdout) -> str:
    """The answer and its sources for a terminal; the model's words and the pages' titles and links are shown,
    never acted on (only our own styling is an escape sequence)."""
    lines = [printable(answer.text), ""]
    if answer.citations:
        lines.append(_style("1", f"{answer.sources_heading}:", stream))
        for citation in answer.citations:
            lines.append(f"  [{citation.number}] {printable(citation.title)}")
            if citation.url:  # a folder source without base_url has no link to show
                lines.append(f"      {_style('4', printable(citation.url), stream)}")
    return "\n".join(lines).rstrip() + "\n"


class StatusPrinter:
    """Start-up status on stderr: lines, except that on a terminal a ``Progress`` line (the engine start) is a live
    bar, as ``python -m indexer`` shows its run."""

    def __init__(self, stream: TextIO, *, quiet: bool = False, live: bool | None = None) -> None:
        self._stream = stream
        self._quiet = quiet
        self._live = stream.isatty() if live is None else live
        self._bar: Any = None

    def __call__(self, message: str) -> None:
        if self._quiet:
            return
        if self._live and isinstance(message, Progress):
            self._show(message)
            return
        self.close()
        print(_style("2", printable(message), self._stream), file=self._stream, flush=True)

    def _show(self, progress: Progress) -> None:
        from tqdm import tqdm

        total = max(progress.total, progress.done) if progress.total else None
        if self._bar is None:
            self._bar = tqdm(
                total=total, unit=progress.unit, desc="Starting the language model", file=self._stream, leave=False
            )
        self._bar.total = total
        self._bar.n = round(progress.done, 1)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


async def ask(settings: Settings, question: str, *, as_json: bool = False) -> int:
    err = sys.stderr
    out = sys.stdout
    status = StatusPrinter(err, quiet=as_json)

    try:
        async with open_core(settings, with_llm=True, require_index=True, status=status) as core:
            assert core.pipeline is not None
            started = time.perf_counter()
            answer: Answer | None = None
            async for update in core.pipeline.stream(question):
                if update.answer is not None:
                    answer = update.answer
                elif err.isatty() and not as_json:
                    label = "Searching the docs" if update.stage == "retrieving" else "Writing the answer"
                    # The raw length: reading update.text would clean the answer on every token.
                    err.write(f"\r\033[K{_style('2', f'{label}… {len(update.raw)} chars', err)}")
                    err.flush()
            assert answer is not None
            if err.isatty() and not as_json:
                err.write("\r\033[K")
            if as_json:
                print(json.dumps(_as_dict(answer)))
                return 0
            out.write(format_answer(answer, out))
            out.flush()
            status(f"Answered in {time.perf_counter() - started:.1f}s (request {answer.request_id}).")
            return 0
    except DocentError as exc:
        status.close()
        error_id = new_error_id()
        detail = f"\n  {exc}" if str(exc) != getattr(exc, "user_message", "") else ""
        print(printable(f"error: {describe(exc, error_id)}{detail}"), file=err)
        return 1
    finally:
        status.close()


def _as_dict(answer: Answer) -> dict[str, object]:
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "sources": [{"number": c.number, "title": c.title, "url": c.url} for c in answer.citations],
        "retrieved": [{"url": h.url, "score": round(h.score, 4)} for h in answer.hits],
        "request_id": answer.request_id,
        "timings_ms": {k: round(v, 1) for k, v in answer.timings_ms.items()},
    }
