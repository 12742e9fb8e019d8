"""What a pasted question is searched as: the asker's words and identifiers, without traceback and log noise.

Users paste tracebacks, log lines, config and code under a one-line title. The embedder reads only its first
256 word pieces, so a long paste pushes the question out of what it sees; BM25 matches frame noise (paths, line
numbers, addresses, timestamps) against nothing useful. The dense side therefore gets the title, the question
sentences and the exception lines first, and a capped length; the lexical side gets everything that can name a
docs topic, code shortened to the identifiers it uses. Text in other languages passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DENSE_MAX_WORDS = 120  # ~200 MiniLM word pieces: the question survives the model's 256-piece truncation

_FENCE = re.compile(r"^\s*(```|~~~)")
_FRAME = re.compile(
    r"""^\s*(?:
        File\ ".*",\ line\ \d+.*                    # Python frame
      | Traceback\ \(most\ recent\ call\ last\):?    # Python header
      | at\ [\w$.<>]+\(.*\)                          # Java / JS frame
      | at\ .*:\d+(?::\d+)?\)?                       # Node frame
      | goroutine\ \d+.*                             # Go
      | [\w./\\-]+\.(?:go|py|java|js|ts|rs|c|cc|cpp|h):\d+.*   # bare file:line
      | \^+ | ~+\^*~*                                # caret markers
      | During\ handling\ of\ the\ above\ exception.*
      | The\ above\ exception\ was\ the\ direct\ cause.*
      | \.\.\.\ \d+\ more
    )\s*$""",
    re.VERBOSE,
)
_EXCEPTION = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Fault))\b")
_QUESTION_START = re.compile(
    r"^(?:how|what|why|where|when|which|who|is|are|can|could|does|do|did|should|would|will|has|have|any)\b", re.I
)
_URL = re.compile(r"\b(?:https?|ftp|file)://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+")
_TIMESTAMP = re.compile(
    r"\[?\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?)?\]?"
    r"|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?"
)
_LOG_LEVEL = re.compile(r"\[\s*(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)\s*\]|\b(?:INFO|DEBUG|TRACE):")
_SYSTEM_PATH = re.compile(r"(?:\b[A-Za-z]:)?[\\/]?(?:[\w.@+~-]+[\\/])+[\w.@+~-]*")  # a/b, /tmp/x.sock, C:\x\y
_NOISY_DIR = re.compile(
    r"site-packages|dist-packages|node_modules|\.venv|^(?:[A-Za-z]:)?[\\/]?(?:usr|home|tmp|var|opt|Users|lib)[\\/]"
    r"|^[A-Za-z]:\\|\\",
    re.I,
)
_FILE_LINE = re.compile(r"\(?[\w.\\/-]+\.(?:go|py|java|js|ts|rs|cc|cpp|c|h):\d+(?::\d+)?\)?")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F-]*\d)(?=[0-9a-fA-F-]*[a-fA-F])[0-9a-fA-F-]{12,}\b")
_IP = re.compile(r"\b\d{1,3}(?:\.(?:\d{1,3}|xx?|\*)){3}(?::\d+)?\b")
_LONG_NUMBER = re.compile(r"\b\d{7,}\b")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*")
_CODE_WORDS = frozenset(
    """and as assert async await break class continue def del elif else except finally for from global if import in
    is lambda nonlocal not or pass raise return try while with yield self cls none true false null undefined
    var let const function new this print str int float bool dict list tuple bytes object any
    """.split()
)
_EMPTIED = re.compile(r"""\[\s*\]|\(\s*\)|\{\s*\}|'\s*'|"\s*"|'[\w ]+':\s*(?=[,}])|``""")  # left by the above
# Issue-template boilerplate: "[Bug]:" tags, "**Description**" / "### To Reproduce" lines, image placeholders.
_TAG = re.compile(r"^\s*\[(?:bug|question|feature|feature request|help|enhancement|docs?)\]:?", re.I)
_MARKUP = re.compile(r"!\[[^\]]*\]|\*\*|^\s*#{1,6}\s+|^\s*>\s?")
_SENTENCE = re.compile(r"(?<=[.?!。？！])\s+")
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class QueryText:
    """A question as searched: ``dense`` is what the embedder reads, ``lexical`` what BM25 is given."""

    dense: str
    lexical: str


def _is_system_path(path: str) -> bool:
    return bool(_NOISY_DIR.search(path)) or bool(re.search(r"\.(?:py|go|java|js|ts|rs|so|dll|sock|db|log)$", path))


def _strip_paths(text: str) -> str:
    """Drop filesystem paths (venvs, temp files, Windows drives); keep URL-like routes such as /api/v1/users."""
    return _SYSTEM_PATH.sub(lambda m: " " if _is_system_path(m.group()) else m.group(), text)


def _is_template_heading(line: str) -> bool:
    """A heading or bold-only line of a few words without a question: "**Describe the bug**", "### Context"."""
    stripped = line.strip()
    if not stripped.startswith(("#", "**")) or "?" in stripped:
        return False
    return len(_MARKUP.sub(" ", stripped).split()) <= 4


def clean_line(line: str) -> str:
    """One line without timestamps, log levels, file:line references, paths, addresses, URLs and long numbers."""
    line = _TAG.sub(" ", line)
    line = _MARKUP.sub(" ", line)
    line = _URL.sub(" ", line)
    line = _TIMESTAMP.sub(" ", line)
    line = _LOG_LEVEL.sub(" ", line)
    line = _FILE_LINE.sub(" ", line)
    line = _strip_paths(line)
    line = _HEX.sub(" ", line)
    line = _IP.sub(" ", line)
    line = _LONG_NUMBER.sub(" ", line)
    line = _EMPTIED.sub(" ", _EMPTIED.sub(" ", line))
    return _SPACES.sub(" ", line).strip(" \t:;,|-")


def code_identifiers(code: str) -> str:
    """A code block shortened to the distinct identifiers it uses, in order, without language keywords."""
    seen: dict[str, None] = {}
    for match in _IDENTIFIER.finditer(clean_line(code)):
        word = match.group()
        if word.lower() not in _CODE_WORDS and len(word) > 1:
            seen.setdefault(word, None)
    return " ".join(seen)


def _url_words(text: str) -> list[str]:
    """The words of URLs' paths (a linked docs page names its topic); hashes, ids and file names dropped."""
    words: list[str] = []
    for url in _URL.findall(text):
        path = re.sub(r"^\w+://[^/]+", "", url)
        for part in re.split(r"[/#?&=.]+", path):
            if re.fullmatch(r"[A-Za-z][A-Za-z_-]{2,}", part) and part.lower() not in {"blob", "tree", "issues", "html"}:
                words.append(part)
    return words


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Each line, and whether it is code (fenced blocks, and indented lines that follow a blank line)."""
    lines: list[tuple[str, bool]] = []
    fenced = False
    indented = False
    previous_blank = True
    for raw in text.splitlines():
        if _FENCE.match(raw):
            fenced = not fenced
            continue
        blank = not raw.strip()
        if not fenced and not blank:
            indented = raw.startswith(("    ", "\t")) and (indented or previous_blank)
        lines.append((raw, fenced or indented))
        previous_blank = blank
    return lines


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(line for line in lines if line))


def _cap(text: str, max_words: int) -> str:
    """The first ``max_words`` words, counting each character of unspaced scripts (CJK) as a word."""
    if not max_words:
        return text
    out: list[str] = []
    budget = max_words
    for word in text.split():
        cost = len(word) if not word.isascii() else 1
        if cost > budget:
            break
        out.append(word)
        budget -= cost
    return " ".join(out)


def normalise_query(text: str, *, dense_max_words: int = DENSE_MAX_WORDS) -> QueryText:
    """Reorder and clean a pasted question for search; see the module docstring for why."""
    exceptions: list[str] = []
    kept: list[str] = []
    code_lines: list[str] = []
    for line, is_code in _blocks(text):
        if _FRAME.match(line) or (not is_code and _is_template_heading(line)):
            continue
        if _EXCEPTION.match(line):
            exceptions.append(clean_line(line))
        elif is_code:
            code_lines.append(line)
        else:
            kept.append(clean_line(line))
    kept = [line for line in kept if line]
    title = kept[:1]
    sentences = [s for line in kept[1:] for s in _SENTENCE.split(line)]
    questions = [s for s in sentences if s.endswith(("?", "？")) or _QUESTION_START.match(s)]
    others = [s for s in sentences if s not in questions]
    identifiers = code_identifiers("\n".join(code_lines))
    ordered = _dedupe([*title, *exceptions, *questions, *others, identifiers])
    dense = _cap(" ".join(ordered), dense_max_words)
    lexical = " ".join(_dedupe([*title, *exceptions, *kept[1:], identifiers, " ".join(_url_words(text))]))
    return QueryText(dense=dense or text.strip(), lexical=lexical or text.strip())


def search_text(question: str, history: Sequence[str], turns: int, *, normalise: bool) -> QueryText:
    """The texts searched for a question; the last ``turns`` earlier questions give a follow-up its subject."""
    earlier = list(history)[-turns:] if turns else []
    if not normalise:
        text = " ".join([*earlier, question])
        return QueryText(dense=text, lexical=text)
    parts = [normalise_query(text) for text in [*earlier, question]]
    return QueryText(dense=" ".join(p.dense for p in parts), lexical=" ".join(p.lexical for p in parts))
