"""Text safety shared by every platform: what the bot sends never carries control characters."""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 range: servers reject some (NUL) and others garble text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sendable(text: str) -> str:
    """``text`` without control characters (newline and tab kept; CRLF becomes LF)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n"))
