"""Text shared by every platform: no control characters in what the bot sends (nor in what the command lines
print), and splitting under a message limit with code fences kept balanced."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")
# C0 controls except tab and newline, DEL, and the C1 range: servers reject some (NUL) and others garble text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# Bidirectional embeddings, overrides and isolates: in a terminal they reorder what follows ("Trojan Source").
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def sendable(text: str) -> str:
    """``text`` without control characters (newline and tab kept; CRLF becomes LF)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n"))


def printable(text: str) -> str:
    """``text`` safe to show an operator in a terminal: what members wrote may carry ESC sequences that erase,
    move or recolour lines (hiding text from the reviewer), or bidirectional overrides that reorder it. Newlines
    and tabs are kept."""
    return _BIDI.sub("", sendable(text))


def split_message(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries; a code block cut in two is closed and reopened."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None  # the opening fence line while inside a code block

    def emit() -> None:
        nonlocal current, size
        body = "\n".join(current).rstrip("\n")
        if fence is not None:
            body += "\n```"
        if body.strip():
            parts.append(body)
        current = [fence] if fence is not None else []
        size = len(fence) + 1 if fence is not None else 0

    reserve = 8  # room for a closing fence
    for line in _lines_within(text, limit - reserve - 40):
        marker = _FENCE.match(line)
        if size + len(line) + 1 > limit - reserve:
            emit()
        elif fence is None and not line.strip() and size > limit * 0.6:
            emit()  # a paragraph break late in a message: a natural place to split
            continue
        current.append(line)
        size += len(line) + 1
        if marker:
            fence = None if fence is not None else line.strip()
    if current:
        emit()  # closes a code block left open at the end
    return parts


def _lines_within(text: str, width: int) -> list[str]:
    """Lines, with any line longer than ``width`` cut at spaces (or hard, if it has none)."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > width // 2 else width
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return out
