"""Markdown files as a title plus heading-scoped sections, parsed with markdown-it-py.

CommonMark plus tables; front matter (YAML ``---`` or TOML ``+++``) is cut off first and read with PyYAML /
tomllib for its title. A few block rules are added for what documentation sites put in their markdown:
``{{path}}`` include lines (spliced in through the resolver, depth- and cycle-limited) and other templating
lines (``{{tab}}``, ``{% if %}``, ``{* file *}``), which are dropped; mkdocs admonitions and content tabs
(``!!! note``, ``??? tip``, ``=== "Tab"``) and pymdownx blocks (``/// tip | Title`` ... ``///``), whose text
is kept. HTML blocks are rendered with the HTML extractor's rules. An opener that is never closed (a stray
fence, ``<pre>`` or ``<!--``) would swallow the rest of the page, so it is read as text instead.

Pure, synchronous and never raises; linear in the input (nesting is capped by markdown-it's ``maxNesting``).
"""

from __future__ import annotations

import bisect
import logging
import re
import tomllib
from collections.abc import Sequence
from pathlib import PurePosixPath

import yaml
from markdown_it import MarkdownIt
from markdown_it.ruler import RuleOptionsType
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.fence import fence as _fence_rule
from markdown_it.rules_block.html_block import html_block as _html_block_rule
from markdown_it.token import Token

from indexer.extract.common import FALLBACK_TITLE, Anchors, Event, Extracted, IncludeResolver, assemble, clean_title
from indexer.extract.common import fenced as _fenced
from indexer.extract.html import render_html_snippet
from rag.models import Section

logger = logging.getLogger(__name__)

_MAX_INCLUDE_DEPTH = 3
_MAX_NESTING = 40  # markdown-it drops what is nested deeper; it also bounds the parser's recursion
_MAX_HEADING_CHARS = 300
_MAX_FRONT_MATTER = 64_000
_ENV_KEY = "docent_closers"

_FRONT_KEY = re.compile(r"^[\w.-]+\s*[:=]")
_TEMPLATE_LINE = re.compile(r"\{\{([^{}]*)\}\}|\{%.*%\}|\{\*.*\*\}")
_INCLUDE_PATH = re.compile(r"[\w./\-]+")
_INCLUDE_EXT = re.compile(r"\.(?:md|mdx|markdown|txt|html?)$", re.I)
_ADMONITION = re.compile(
    r"""(?:(?:!!!|\?\?\?\+?)[ \t]+[\w-]+(?:[ \t]+[\w-]+)*|===\+?(?=[ \t]+"))(?:[ \t]+"(.*)")?[ \t]*"""
)
_SLASH_OPEN = re.compile(r"(/{3,})[ \t]*([A-Za-z][\w-]*)[^|]*(?:\|[ \t]*(.*?))?[ \t]*")
_CLOSER = re.compile(r"[ \t>]*(`{3,}|~{3,}|/{3,})[ \t]*")
_RAW_OPEN = re.compile(r"<(script|pre|style|textarea)(?=[\s>]|$)", re.I)
_RAW_CLOSE = re.compile(r"</(script|pre|style|textarea)>", re.I)
_CUSTOM_ID = re.compile(r"\s*\{\s*:?\s*#([^\s}]+)[^}]*\}\s*$")
_A_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_MD_LINK = re.compile(r"!\[[^\[\]\n]*\]\([^()\s]*\)|\[([^\[\]\n]*)\]\([^()\s]*\)")
_REF_LINK = re.compile(r"\[([^\[\]\n]+)\]\[[^\[\]\n]*\]")
_PLACEHOLDER = re.compile("\ue001(\\d+)\ue002")
_INLINE_HTML_TAGS = frozenset(
    "a abbr b bdi bdo big cite del dfn em font i ins kbd mark nobr q s samp small span strike strong "
    "sub sup time tt u var wbr label input button source video audio picture iframe object embed svg "
    "path use img".split()
)
_BREAK_HTML_TAGS = frozenset(
    "address article aside blockquote br center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p section summary table tbody td tfoot th "
    "thead tr ul caption colgroup col".split()
)


# --------------------------------------------------------------------------- front matter


def _normalise(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return (text or "").lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _split_front_matter(text: str) -> tuple[str, str]:
    """Cut YAML (``---``) or TOML (``+++``) front matter off; return (body, title or '').

    Parsed with PyYAML / tomllib rather than by hand so quoting, folding and escapes come out right. A
    leading thematic break followed by prose parses to a string, not a mapping, so it stays in the body.
    """
    marker = text[: text.find("\n")].rstrip() if "\n" in text else ""
    if marker not in ("---", "+++"):
        return text, ""
    closers = ("---", "...") if marker == "---" else ("+++",)
    start = text.find("\n") + 1
    pos = start
    while True:
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
        if line.rstrip() in closers:
            break
        if end < 0:
            return text, ""
        pos = end + 1
    meta, body = text[start:pos], ("" if end < 0 else text[end + 1 :])
    if len(meta) > _MAX_FRONT_MATTER:
        return body, ""
    try:
        data = tomllib.loads(meta) if marker == "+++" else yaml.load(meta, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        # Front matter that YAML rejects (template syntax in values) is still metadata if it is keyed.
        return (body, "") if _FRONT_KEY.match(meta) else (text, "")
    if data is None:
        return body, ""
    if not isinstance(data, dict):
        return text, ""
    title = data.get("title")
    if isinstance(title, bool) or not isinstance(title, str | int | float):
        return body, ""
    return body, clean_title(str(title))


# --------------------------------------------------------------------------- parser


class _Closers:
    """Where closers sit in one source, so an opener can tell in O(log n) whether it is ever closed.

    Scanning ahead from every opener would be quadratic on a page of stray fences.
    """

    def __init__(self, src: str) -> None:
        self.comment_close = src.rfind("-->")
        self.raw_close: dict[str, int] = {}
        if "</" in src:
            for m in _RAW_CLOSE.finditer(src):
                self.raw_close[m.group(1).lower()] = m.start()
        self._fence_lines: dict[str, list[int]] = {}
        self._fence_max: dict[str, list[int]] = {}  # longest closer at or after each entry of _fence_lines
        self._slashes: dict[int, list[int]] = {}
        if "```" not in src and "~~~" not in src and "///" not in src:
            return
        fence_lens: dict[str, list[int]] = {}
        for n, line in enumerate(src.split("\n")):
            if "``" not in line and "~~" not in line and "//" not in line:
                continue
            closer = _CLOSER.fullmatch(line)
            if closer is None:
                continue
            run = closer.group(1)
            if run[0] == "/":
                self._slashes.setdefault(len(run), []).append(n)
            else:
                self._fence_lines.setdefault(run[0], []).append(n)
                fence_lens.setdefault(run[0], []).append(len(run))
        for char, lens in fence_lens.items():
            best, suffix = 0, [0] * len(lens)
            for i in range(len(lens) - 1, -1, -1):
                best = max(best, lens[i])
                suffix[i] = best
            self._fence_max[char] = suffix

    def fence_closed(self, char: str, length: int, line: int) -> bool:
        lines = self._fence_lines.get(char, [])
        k = bisect.bisect_right(lines, line)
        return k < len(lines) and self._fence_max[char][k] >= length

    def slash_close(self, count: int, line: int) -> int:
        """The line of the first ``///`` closer of exactly ``count`` slashes after ``line``, or -1."""
        lines = self._slashes.get(count, [])
        k = bisect.bisect_right(lines, line)
        return lines[k] if k < len(lines) else -1


def _closers(state: StateBlock) -> _Closers:
    found = state.env.get(_ENV_KEY)
    if not isinstance(found, _Closers):
        found = state.env[_ENV_KEY] = _Closers(state.src)
    return found


def _line(state: StateBlock, line: int) -> tuple[int, str]:
    pos = state.bMarks[line] + state.tShift[line]
    return pos, state.src[pos : state.eMarks[line]]


def _fence(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """CommonMark fences, except that one never closed is text rather than code to the end of the page."""
    if state.is_code_block(start):
        return False
    _, text = _line(state, start)
    char = text[:1]
    if char not in ("`", "~"):
        return False
    length = len(text) - len(text.lstrip(char))
    if length < 3 or not _closers(state).fence_closed(char, length, start):
        return False
    return _fence_rule(state, start, end, silent)


def _html_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """CommonMark HTML blocks, except that an unclosed ``<!--`` hides only its paragraph and an unclosed
    ``<pre>``/``<script>`` is text, instead of either swallowing the rest of the page."""
    if state.is_code_block(start):
        return False
    pos, text = _line(state, start)
    if text.startswith("<!--") and _closers(state).comment_close < pos + 2:
        if silent:
            return True
        line = start + 1
        while line < end and not state.isEmpty(line):
            line += 1
        token = state.push("html_block", "", 0)
        token.map = [start, line]
        token.content = ""
        state.line = line
        return True
    raw = _RAW_OPEN.match(text)
    if raw and _closers(state).raw_close.get(raw.group(1).lower(), -1) < pos:
        return False
    return _html_block_rule(state, start, end, silent)


def _template_line(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A line that is only ``{{...}}``, ``{% ... %}`` or ``{* ... *}``: an include or templating to drop."""
    if state.is_code_block(start):
        return False
    _, text = _line(state, start)
    if not text.startswith("{"):
        return False
    m = _TEMPLATE_LINE.fullmatch(text.rstrip())
    if m is None:
        return False
    if silent:
        return True
    token = state.push("template", "", 0)
    token.info = (m.group(1) or "").strip()
    token.map = [start, start + 1]
    state.line = start + 1
    return True


def _container(state: StateBlock, start: int, body: int, stop: int, title: str) -> None:
    """Tokens of lines ``body``..``stop`` (exclusive) wrapped in a container whose title is kept as text."""
    token = state.push("container_open", "div", 1)
    token.info = title
    token.map = [start, stop]
    old_max = state.lineMax
    state.lineMax = stop
    state.md.block.tokenize(state, body, stop)
    state.lineMax = old_max
    state.push("container_close", "div", -1)


def _indented_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """mkdocs admonitions and content tabs: a marker line, then content indented four more spaces."""
    if state.is_code_block(start):
        return False
    _, text = _line(state, start)
    if text[:3] not in ("!!!", "???", "==="):
        return False
    m = _ADMONITION.fullmatch(text)
    if m is None:
        return False
    if silent:
        return True
    indent = state.sCount[start] + 4
    line, stop = start + 1, start + 1
    while line < end:
        if not state.isEmpty(line):
            if state.sCount[line] < indent:
                break
            stop = line + 1
        line += 1
    old_indent = state.blkIndent
    state.blkIndent = indent
    _container(state, start, start + 1, stop, m.group(1) or "")
    state.blkIndent = old_indent
    state.line = stop
    return True


def _slash_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """pymdownx blocks: ``/// type | Title`` ... ``///`` (same number of slashes); unclosed ones are text."""
    if state.is_code_block(start):
        return False
    _, text = _line(state, start)
    if not text.startswith("///"):
        return False
    m = _SLASH_OPEN.fullmatch(text)
    if m is None:
        return False
    close = _closers(state).slash_close(len(m.group(1)), start)
    if close < 0 or close >= end:
        return False
    if silent:
        return True
    _container(state, start, start + 1, close, m.group(3) or "")
    state.line = close + 1
    return True


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING}).enable("table")
    terminates: RuleOptionsType = {"alt": ["paragraph", "reference", "blockquote"]}
    md.block.ruler.at("fence", _fence, {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.block.ruler.at("html_block", _html_block, terminates)
    md.block.ruler.before("fence", "docent_template", _template_line, terminates)
    md.block.ruler.before("fence", "docent_admonition", _indented_block, terminates)
    md.block.ruler.before("fence", "docent_slash_block", _slash_block, terminates)
    return md


# --------------------------------------------------------------------------- rendering


def _code_span(token: Token) -> str:
    content, ticks = token.content, token.markup or "`"
    if content.startswith("`") or content.endswith("`") or (content[:1] == content[-1:] == " " and content.strip()):
        content = f" {content} "
    return f"{ticks}{content}{ticks}"


def _inline_html(content: str, mode: str) -> str:
    """An inline tag as the reader sees it: markup gone, ``<br>`` a line break, ``<your_token>`` kept."""
    if content.startswith(("<!--", "<?", "<!")):
        return ""
    m = _TAG_NAME.match(content)
    if m is None:
        return content
    name = m.group(2).lower()
    if name == "code":
        return "" if mode == "heading" else "`"
    if name in _BREAK_HTML_TAGS:
        return "\n" if mode == "text" else " "
    if name in _INLINE_HTML_TAGS:
        return ""
    return content  # List<String>: a placeholder, not markup


def _inline_text(children: Sequence[Token] | None, mode: str) -> str:
    """Reader-visible text of an inline run; ``mode`` is ``text``, ``heading`` (no code ticks) or ``cell``."""
    parts: list[str] = []
    spans: list[str] = []
    for token in children or ():
        kind = token.type
        if kind == "text":
            parts.append(token.content)
        elif kind == "code_inline":
            if mode == "heading":
                parts.append(token.content)
            else:  # kept aside so that the reference-link cleanup below never touches code
                spans.append(_code_span(token))
                parts.append(f"\ue001{len(spans) - 1}\ue002")
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n" if mode == "text" else " ")
        elif kind == "html_inline":
            parts.append(_inline_html(token.content, mode))
        # links and emphasis keep their text; images go (their alt text is rarely prose)
    text = "".join(parts).replace("\xa0", " ")
    if "][" in text:  # [text][ref] whose definition lives elsewhere (mkdocs autorefs): keep the text
        text = _REF_LINK.sub(r"\1", text)
    if spans:
        text = _PLACEHOLDER.sub(lambda m: spans[int(m.group(1))], text)
    if mode == "text":
        lines = [line.rstrip() for line in text.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    text = clean_title(text)
    return text.replace("|", "\\|") if mode == "cell" else text


def _heading_text(children: Sequence[Token] | None) -> tuple[str, str]:
    """(text, explicit anchor) of a heading: ``{#id}`` attribute lists and ``<a name>`` anchors win."""
    anchor = ""
    for token in children or ():
        if token.type == "html_inline" and not anchor:
            named = _A_ANCHOR.match(token.content)
            if named:
                anchor = named.group(1).strip()
    text = _inline_text(children, "heading")[: _MAX_HEADING_CHARS * 2]
    custom = _CUSTOM_ID.search(text)
    if custom:
        anchor = custom.group(1)
        text = text[: custom.start()].rstrip()
    return text[:_MAX_HEADING_CHARS].rstrip(), anchor


def _looks_like_include(target: str) -> bool:
    return bool(_INCLUDE_PATH.fullmatch(target)) and ("/" in target or bool(_INCLUDE_EXT.search(target)))


def _resolve(resolver: IncludeResolver, target: str) -> str | None:
    try:
        fragment = resolver(target)
    except Exception:  # a broken resolver costs one include, not the page
        logger.warning("include resolver failed for %s", target, exc_info=True)
        return None
    return fragment if isinstance(fragment, str) else None


class _Renderer:
    """Walks markdown-it's flat token stream into heading and block events (no recursion)."""

    def __init__(self, md: MarkdownIt, resolver: IncludeResolver | None) -> None:
        self._md = md
        self._resolver = resolver
        self.anchors = Anchors()
        self.events: list[Event] = []
        self.first_h1 = ""
        self._lists: list[list[int]] = []  # [ordered (0/1), next number]
        self._items: list[list[str | None]] = []  # [pending marker or None, continuation indent]
        self._new_list = False

    def document(self, text: str, depth: int, chain: tuple[str, ...]) -> None:
        tokens = self._md.parse(text, {})
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind in ("heading_open", "paragraph_open") and i + 1 < len(tokens):
                children = tokens[i + 1].children
                if kind == "heading_open":
                    self._heading(int(token.tag[1:]), children)
                else:
                    self._block("p", _inline_text(children, "text"))
                i += 3
                continue
            if kind == "table_open":
                i = self._table(tokens, i)
                continue
            if kind == "fence":
                self._block("code", f"{token.markup}{token.info}\n{token.content}{token.markup}")
            elif kind == "code_block":
                self._block("code", _fenced(token.content.rstrip("\n")))
            elif kind == "html_block":
                self._html(token.content)
            elif kind == "template":
                self._include(token.info, depth, chain)
            elif kind == "container_open" and token.info:
                self._block("p", clean_title(token.info))
            elif kind in ("bullet_list_open", "ordered_list_open"):
                if not self._lists:
                    self._new_list = True
                start = token.attrGet("start")
                self._lists.append([int(kind == "ordered_list_open"), int(start) if isinstance(start, int) else 1])
            elif kind in ("bullet_list_close", "ordered_list_close"):
                if self._lists:
                    self._lists.pop()
            elif kind == "list_item_open":
                ordered, number = self._lists[-1] if self._lists else [0, 1]
                if self._lists and ordered:
                    self._lists[-1][1] += 1
                marker = f"{number}." if ordered else "-"
                indent = self._items[-1][1] or "" if self._items else ""
                indent = indent[:24]  # deeper nesting is flattened rather than indented further
                self._items.append([f"{indent}{marker} ", indent + " " * (len(marker) + 1)])
            elif kind == "list_item_close" and self._items:
                self._items.pop()
            i += 1

    def _block(self, kind: str, text: str) -> None:
        if not text.strip():
            return
        if self._items:
            item = self._items[-1]
            indent = item[1] or ""
            prefix = item[0] if item[0] is not None else indent
            item[0] = None
            kind = "list" if self._new_list else "li"
            text = prefix + text.replace("\n", "\n" + indent)
        self._new_list = False
        self.events.append(("b", kind, text))

    def _heading(self, level: int, children: Sequence[Token] | None) -> None:
        text, anchor = _heading_text(children)
        if not text:
            return
        if level > 4:  # minor headings stay in their section's text, as on a rendered page
            self._block("p", text)
            return
        anchor = self.anchors.explicit(anchor) if anchor else self.anchors.slug(text)
        self.events.append(("h", level, text, anchor))
        if level == 1 and not self.first_h1:
            self.first_h1 = text

    def _table(self, tokens: list[Token], i: int) -> int:
        rows: list[list[str]] = []
        header = False
        in_head = False
        row: list[str] | None = None
        i += 1
        while i < len(tokens) and tokens[i].type != "table_close":
            kind = tokens[i].type
            if kind == "thead_open":
                in_head = True
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_open":
                row = []
            elif kind == "tr_close" and row is not None:
                if any(row):
                    header = header or (in_head and not rows)
                    rows.append(row)
                row = None
            elif kind == "inline" and row is not None:
                row.append(_inline_text(tokens[i].children, "cell"))
            i += 1
        if rows:
            width = max(len(r) for r in rows)
            lines: list[str] = []
            for n, cells in enumerate(rows):
                lines.append("| " + " | ".join(cells + [""] * (width - len(cells))) + " |")
                if n == 0 and header and len(rows) > 1:
                    lines.append("|" + "|".join(["---"] * width) + "|")
            self._block("table", "\n".join(lines))
        return i + 1

    def _html(self, content: str) -> None:
        if not content.strip():
            return
        for event in render_html_snippet(content, self.anchors):
            if len(event) == 4:
                self.events.append(event)
                if event[1] == 1 and not self.first_h1:
                    self.first_h1 = event[2]
                continue
            kind, text = event[1], event[2]
            if kind != "code" and "](" in text:  # markdown links written inside an HTML block
                text = _MD_LINK.sub(lambda m: m.group(1) or "", text)
            self._block(kind, text)

    def _include(self, target: str, depth: int, chain: tuple[str, ...]) -> None:
        """Splice in a ``{{path}}`` include; anything else in ``{{ }}`` renders as nothing."""
        if self._resolver is None or not _looks_like_include(target):
            return
        if depth >= _MAX_INCLUDE_DEPTH or target in chain:
            return
        fragment = _resolve(self._resolver, target)
        if fragment is not None:
            body, _ = _split_front_matter(_normalise(fragment))
            self.document(body, depth + 1, (*chain, target))


def _stem(path_hint: str) -> str:
    if not path_hint:
        return ""
    try:
        return PurePosixPath(path_hint.replace("\\", "/").rstrip("/")).stem
    except Exception:  # a weird hint only loses the fallback title
        return ""


def _extract_markdown(text: str, path_hint: str, resolver: IncludeResolver | None) -> Extracted:
    body, title = _split_front_matter(_normalise(text))
    renderer = _Renderer(_parser(), resolver)
    renderer.document(body, 0, ())
    title = title or renderer.first_h1 or clean_title(_stem(path_hint)) or FALLBACK_TITLE
    return Extracted(title, assemble(renderer.events))


def extract_markdown(text: str, *, path_hint: str = "", include_resolver: IncludeResolver | None = None) -> Extracted:
    """Markdown (with front matter, includes and inline HTML) as title plus sections; never raises."""
    try:
        return _extract_markdown(text, path_hint, include_resolver)
    except Exception:
        logger.warning("markdown extraction failed, using raw text: %s", path_hint or "<markdown>", exc_info=True)
    try:
        raw = _normalise(text).strip()
        title = clean_title(_stem(path_hint)) or FALLBACK_TITLE
        return Extracted(title, (Section((), "", raw),) if raw else ())
    except Exception:  # the contract is to never raise
        return Extracted(FALLBACK_TITLE, ())
