"""Turn fetched HTML pages and markdown files into a title plus heading-scoped sections.

Both extractors are pure and synchronous (the indexer runs them in a worker thread) and never
raise: a page that cannot be parsed degrades to plain text, or to no sections at all, rather
than aborting an index run. Section text is light markdown so that the chunker and the model
see paragraphs, lists, tables and fenced code the way a reader would.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString

from rag.models import Section

logger = logging.getLogger(__name__)

FALLBACK_TITLE = "Untitled"
IncludeResolver = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Extracted:
    title: str
    sections: tuple[Section, ...]


# --------------------------------------------------------------------------- shared helpers

_WS = re.compile(r"\s+")
_SLUG_DROP = re.compile(r"[^\w\- ]")


def slugify(heading: str) -> str:
    """GitHub-style anchor, so deep links built from markdown headings match the rendered site."""
    text = " ".join(heading.split()).lower()
    return _SLUG_DROP.sub("", text).replace(" ", "-")


class _Anchors:
    """Slug anchors made unique the way GitHub does (``x``, ``x-1``, ``x-2``)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._next: dict[str, int] = {}

    def explicit(self, anchor: str) -> str:
        self._seen.add(anchor)
        return anchor

    def slug(self, text: str) -> str:
        base = slugify(text)
        slug, n = base, self._next.get(base, 0)
        while slug in self._seen:
            n += 1
            slug = f"{base}-{n}"
        self._next[base] = n
        self._seen.add(slug)
        return slug


# Events shared by both extractors: ("h", level, text, anchor) or ("b", kind, text).
_Event = tuple


def _join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks, except consecutive items of one list which stay tight.

    ``list`` marks the first item of a top-level list, so two adjacent lists stay apart.
    """
    out: list[str] = []
    prev = ""
    for kind, text in blocks:
        if out:
            out.append("\n" if kind == "li" and prev in ("li", "list") else "\n\n")
        out.append(text)
        prev = kind
    return "".join(out)


def _assemble(events: list[_Event]) -> tuple[Section, ...]:
    """Group blocks under the heading path in force; sections without text are dropped."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    anchor = ""
    blocks: list[tuple[str, str]] = []

    def finish() -> None:
        text = _join_blocks(blocks)
        if text.strip():
            sections.append(Section(tuple(t for _, t in path), anchor, text))

    for event in events:
        if event[0] == "h":
            finish()
            blocks = []
            _, level, text, anchor = event
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, text))
        else:
            blocks.append((event[1], event[2]))
    finish()
    return tuple(sections)


def _clean_title(text: str | None) -> str:
    return " ".join((text or "").split())


# --------------------------------------------------------------------------- HTML

_DROP_TAGS = frozenset(
    "script style noscript template svg form button iframe head title meta link object embed "
    "select textarea input img picture video audio map area canvas wbr".split()
)
_STRUCTURAL_NOISE = frozenset({"nav", "header", "footer", "aside"})
_SPLIT_HEADINGS = frozenset({"h1", "h2", "h3", "h4"})
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body center dd details dialog dir div dl dt fieldset figcaption "
    "figure footer header hgroup hr html li main menu nav ol p pre section summary table tbody td tfoot "
    "th thead tr ul h1 h2 h3 h4 h5 h6 caption legend".split()
)
_NOISE_ROLES = frozenset(
    "navigation banner contentinfo complementary search menu menubar toolbar tablist dialog alertdialog".split()
)
# Class/id heuristics never apply to these: they carry content even when a theme names them oddly
# (pandoc's <tr class="header">, Sphinx's <section id="navigation">).
_HEURISTIC_EXEMPT = frozenset(
    "h1 h2 h3 h4 h5 h6 table thead tbody tfoot tr th td caption pre code main article body html".split()
)
_ID_EXEMPT = _HEURISTIC_EXEMPT | {"section", "dt", "dd", "span", "a", "p", "li"}
_NOISE_WORDS = frozenset(
    "nav navbar navigation sidebar sidenav toc breadcrumb breadcrumbs cookie cookies menu skip "
    "topbar pagination linenos lineno linenodiv headerlink permalink".split()
)
_HEADER_WORDS = frozenset({"header", "masthead", "footer"})
_NOISE_SUBSTRINGS = tuple(
    "sidebar navbar breadcrumb cookie skip-link skiplink skip-to edit-this-page editthispage edit-page "
    "headerlink hash-link anchorjs tableofcontents table-of-contents consent theme-doc-footer "
    "theme-last-updated sr-only visually-hidden screen-reader".split()
)
_NOISE_IDS = frozenset(
    "nav navigation navbar toc sidebar header footer menu breadcrumbs breadcrumb masthead site-header "
    "site-footer site-nav topbar top-nav".split()
)
_WORD_SPLIT = re.compile(r"[-_\s]+")
_CONTENT_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("class", "md-content"),
    ("class", "theme-doc-markdown"),
    ("class", "markdown-body"),
    ("class", "rst-content"),
    ("class", "document"),
    ("id", "content"),
    ("id", "main-content"),
    ("class", "main-content"),
    ("class", "content"),
    ("class", "docs-content"),
    ("class", "post-content"),
    ("class", "entry-content"),
    ("class", "page-content"),
)
_LANG_CLASS = re.compile(r"^(?:language|lang|highlight|sourceCode)-([\w+#.-]+)$")
_MAX_INDENT = 24  # deeper list nesting is flattened rather than indented further
_BR_MARK = "\ue000"  # a hard line break that survives whitespace collapsing
_ITEM_MARK = "\ue003"  # a list item boundary inside flattened text
_BR_AROUND = re.compile(r" ?\ue000 ?")
_HEADING_TRAIL = re.compile(r"(?:\s*[¶§🔗\u200b]|\s+#)+$")
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|–—·»]|::|-)\s+")
_TAG_RE = re.compile(r"<[^<>]*>")
_INERT_OPEN = re.compile(r"<!--|<(script|style|svg|template|noscript)\b", re.I)
_INERT_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "svg", "template", "noscript")}
_VOID_TAG = re.compile(r"<(area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)\b([^<>]*?)/?>", re.I)
_MARKED_SECTION = re.compile(r"<!\[(?!CDATA\[)")
_TITLE_TAG_RE = re.compile(r"<title[^<>]*>([^<]*)</title\s*>", re.I)


def _classes(tag: Tag) -> list[str]:
    value = tag.attrs.get("class")
    if value is None:
        return []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def _attr(tag: Tag, name: str) -> str:
    value = tag.attrs.get(name)
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else str(value)


class _NoiseFilter:
    """Decides which elements are site chrome (navigation, sidebars, banners) rather than content."""

    def __init__(self, root_is_body: bool) -> None:
        self._root_is_body = root_is_body

    def _keep_header(self, tag: Tag) -> bool:
        # A <header> inside the article often holds the page's h1: keep it there, but not the
        # site banner of a page without a content container.
        if self._root_is_body:
            return False
        for seen, node in enumerate(tag.descendants):
            if seen > 5000:  # a title header is small; don't rescan huge nested subtrees
                return False
            if isinstance(node, Tag) and node.name in _SPLIT_HEADINGS:
                return True
        return False

    def is_noise(self, tag: Tag) -> bool:
        name = tag.name
        if name in _STRUCTURAL_NOISE:
            return not (name == "header" and self._keep_header(tag))
        attrs = tag.attrs
        if not attrs:
            return False
        role = _attr(tag, "role").lower()
        if role in _NOISE_ROLES:
            return not (role == "banner" and self._keep_header(tag))
        if name in _HEURISTIC_EXEMPT:
            return False
        if _attr(tag, "aria-hidden").lower() == "true" and name in ("a", "span", "i"):
            return True
        header_hit = False
        tokens = [c.lower() for c in _classes(tag)]
        ident = _attr(tag, "id").lower()
        if ident and name not in _ID_EXEMPT:
            if ident in _NOISE_IDS:
                if ident in ("header", "masthead", "site-header", "footer", "site-footer"):
                    header_hit = True
                else:
                    return True
            elif any(s in ident for s in ("sidebar", "navbar", "breadcrumb", "cookie", "skip-to", "skip-link")):
                return True
        for token in tokens:
            if any(s in token for s in _NOISE_SUBSTRINGS):
                return True
            for word in _WORD_SPLIT.split(token):
                if word in _NOISE_WORDS:
                    return True
                if word in _HEADER_WORDS:
                    header_hit = True
        return header_hit and not self._keep_header(tag)


def _walk_text(el: Tag | list[PageElement], noise: _NoiseFilter | None, *, ticks: bool, breaks: str) -> str:
    """Flattened text of an element (or a run of nodes) without recursion: cells, headings."""
    parts: list[str] = []
    nodes = el if isinstance(el, list) else [el]
    stack: list[tuple[PageElement, bool]] = [(node, False) for node in reversed(nodes)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append("`")
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                parts.append(node)
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name in _DROP_TAGS or (noise is not None and noise.is_noise(node)):
            continue
        if name == "li":
            parts.append(_ITEM_MARK)
        elif name == "br" or name in _BLOCK_TAGS:
            parts.append(breaks)
        if ticks and name == "code":
            parts.append("`")
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    text = _WS.sub(" ", "".join(parts)).strip()
    return _join_items(text) if _ITEM_MARK in text else text


def _join_items(text: str) -> str:
    """List items flattened into one line (a table cell) stay distinguishable: ``a; b``."""
    out: list[str] = []
    for piece in text.split(_ITEM_MARK):
        piece = piece.strip()
        if not piece:
            continue
        if out and out[-1][-1] not in ".;:,!?":
            out[-1] += ";"
        out.append(piece)
    return " ".join(out)


def _pre_text(pre: Tag, noise: _NoiseFilter | None) -> str:
    """Exact text of a <pre>, keeping whitespace; <br> becomes a newline, line numbers are skipped."""
    parts: list[str] = []
    stack: list[PageElement] = [pre]
    while stack:
        node = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                parts.append(node)
            continue
        if not isinstance(node, Tag):
            continue
        if node is not pre:
            if node.name in _DROP_TAGS or (noise is not None and noise.is_noise(node)):
                continue
            if node.name == "br":
                parts.append("\n")
                continue
        stack.extend(reversed(node.contents))
    code = "".join(parts)
    code = re.sub(r"\A(?:[ \t]*\n)+", "", code)
    return re.sub(r"(?:\n[ \t]*)+\Z", "", code).rstrip("\n")


def _code_language(pre: Tag) -> str:
    candidates: list[Tag] = [pre]
    code = next((c for c in pre.children if isinstance(c, Tag)), None)
    if code is not None and code.name == "code":
        candidates.append(code)
    parent = pre.parent
    for _ in range(2):  # Sphinx puts highlight-python on the grandparent
        if not isinstance(parent, Tag):
            break
        candidates.append(parent)
        parent = parent.parent
    for el in candidates:
        for cls in _classes(el):
            m = _LANG_CLASS.match(cls)
            if m and m.group(1).lower() not in ("default", "none", "notranslate"):
                return m.group(1)
    return ""


def _fenced(code: str, language: str = "") -> str:
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}{language}\n{code}\n{fence}"


_LAYOUT_MARKERS = frozenset({"pre", "h1", "h2", "h3", "h4", "table"})


def _table_parts(table: Tag) -> tuple[Tag | None, list[Tag]] | None:
    """Caption and rows of a data table, or None for a layout table to walk like any container.

    Tables wrapping code, headings or other tables (line-number tables, old page layouts) would be
    mangled by flattening them into pipe rows.
    """
    caption: Tag | None = None
    rows: list[Tag] = []
    stack: list[PageElement] = list(reversed(table.contents))
    while stack:
        node = stack.pop()
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name in _LAYOUT_MARKERS:
            return None
        if name == "caption" and caption is None:
            caption = node
            continue
        if name == "tr":
            rows.append(node)
        stack.extend(reversed(node.contents))
    return caption, rows


class _HtmlRenderer:
    """Iterative walk producing heading and block events; no recursion, so deep nesting is safe."""

    def __init__(self, root: Tag, *, noise: _NoiseFilter | None, split_headings: bool) -> None:
        self._root = root
        self._noise = noise
        self._split = split_headings
        self._anchors = _Anchors()
        self.events: list[_Event] = []
        self._inline: list[str] = []
        self._lists: list[list] = []  # [ordered, next number]
        self._items: list[list] = []  # [pending marker or None, continuation indent]
        self._new_list = False

    def render(self) -> list[_Event]:
        stack: list[tuple[PageElement, bool]] = [(self._root, False)]
        while stack:
            node, closing = stack.pop()
            if closing:
                self._close(node)  # type: ignore[arg-type]
                continue
            if isinstance(node, NavigableString):
                if not isinstance(node, PreformattedString):
                    self._inline.append(node)
                continue
            if not isinstance(node, Tag):
                continue
            descend = self._open(node)
            if descend is True:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.contents))
            elif descend:  # the content part of an unclosed heading
                stack.extend((child, False) for child in reversed(descend))
        self._flush()
        return self.events

    def _open(self, tag: Tag) -> bool | list[PageElement]:
        """Handle an opening tag; True to walk its children, or a list of children to walk."""
        name = tag.name
        if name in _DROP_TAGS:
            return False
        if tag is not self._root and self._noise is not None and self._noise.is_noise(tag):
            return False
        if self._split and name in _SPLIT_HEADINGS:
            self._flush()
            # html.parser has no implied end tags: in "<h2>Head<p>text" the paragraph lands inside
            # the heading, so only what precedes the first block child is heading text.
            children = list(tag.contents)
            cut = next(
                (i for i, c in enumerate(children) if isinstance(c, Tag) and c.name in _BLOCK_TAGS),
                len(children),
            )
            text = _walk_text(children[:cut], self._noise, ticks=False, breaks=" ")
            if not text:  # <h2><div>Title</div></h2>: the wrapper is the heading
                text, cut = _walk_text(tag, self._noise, ticks=False, breaks=" "), len(children)
            text = _HEADING_TRAIL.sub("", text).strip()
            if text:
                self.events.append(("h", int(name[1]), text, self._anchor_for(tag, text)))
            return children[cut:]
        if name == "pre":
            self._flush()
            code = _pre_text(tag, self._noise)
            if code.strip():
                self.events.append(("b", "code", _fenced(code, _code_language(tag))))
            return False
        if name == "table":
            parts = _table_parts(tag)
            if parts is not None:
                self._flush()
                self._table(*parts)
                return False
        if name == "br":
            self._inline.append(_BR_MARK)
            return False
        if name == "code":
            self._inline.append("`")
            return True
        if name in ("ul", "ol"):
            self._flush()
            try:
                start = int(_attr(tag, "start") or 1)
            except ValueError:
                start = 1
            if not self._lists:
                self._new_list = True
            self._lists.append([name == "ol", start])
            return True
        if name == "li":
            self._flush()
            ordered, number = self._lists[-1] if self._lists else (False, 1)
            if self._lists and ordered:
                self._lists[-1][1] += 1
            marker = f"{number}." if ordered else "-"
            indent = self._items[-1][1][:_MAX_INDENT] if self._items else ""
            self._items.append([f"{indent}{marker} ", indent + " " * (len(marker) + 1)])
            return True
        if name in _BLOCK_TAGS:
            self._flush()
        return True

    def _close(self, tag: Tag) -> None:
        name = tag.name
        if name == "code":
            self._inline.append("`")
        elif name in ("ul", "ol"):
            self._flush()
            if self._lists:
                self._lists.pop()
        elif name == "li":
            self._flush()
            if self._items:
                self._items.pop()
        elif name in _BLOCK_TAGS:
            self._flush()

    def _flush(self) -> None:
        if not self._inline:
            return
        text = _WS.sub(" ", "".join(self._inline))
        self._inline.clear()
        text = _BR_AROUND.sub(_BR_MARK, text).strip(" " + _BR_MARK) if _BR_MARK in text else text.strip()
        if not text or text == "``":
            return
        if self._items:
            item = self._items[-1]
            prefix = item[0] if item[0] is not None else item[1]
            item[0] = None
            kind = "list" if self._new_list else "li"
            self._new_list = False
            self.events.append(("b", kind, prefix + text.replace(_BR_MARK, "\n" + item[1])))
        else:
            self.events.append(("b", "p", text.replace(_BR_MARK, "\n")))

    def _anchor_for(self, heading: Tag, text: str) -> str:
        found = _explicit_anchor(heading)
        return self._anchors.explicit(found) if found else self._anchors.slug(text)

    def _table(self, caption: Tag | None, trs: list[Tag]) -> None:
        if caption is not None:
            text = _walk_text(caption, self._noise, ticks=True, breaks=" ")
            if text:
                self.events.append(("b", "p", text))
        rows: list[list[str]] = []
        header_first = False
        for tr in trs:
            cells = [c for c in tr.children if isinstance(c, Tag) and c.name in ("td", "th")]
            texts = [_walk_text(c, self._noise, ticks=True, breaks=" ").replace("|", "\\|") for c in cells]
            if not any(texts):
                continue
            if not rows:
                in_head = tr.parent is not None and tr.parent.name == "thead"
                header_first = in_head or all(c.name == "th" for c in cells)
            rows.append(texts)
        if not rows:
            return
        width = max(len(r) for r in rows)
        lines: list[str] = []
        for i, row in enumerate(rows):
            row = row + [""] * (width - len(row))
            lines.append("| " + " | ".join(row) + " |")
            if i == 0 and header_first and len(rows) > 1:
                lines.append("|" + "|".join(["---"] * width) + "|")
        self.events.append(("b", "table", "\n".join(lines)))


def _explicit_anchor(heading: Tag) -> str:
    """An anchor the page itself defines for a heading, which beats a guessed slug."""
    own = _attr(heading, "id").strip()
    if own:
        return own
    for a in heading.descendants:
        if not isinstance(a, Tag) or a.name != "a":
            continue
        value = (_attr(a, "id") or _attr(a, "name")).strip()
        if value:
            return value
        href = _attr(a, "href").strip()
        if href.startswith("#") and len(href) > 1 and not a.get_text().strip(" ¶#§\u200b\n\t"):
            return href[1:]
    prev = next((p for p in heading.previous_siblings if isinstance(p, Tag) or str(p).strip()), None)
    if isinstance(prev, Tag) and prev.name == "a" and not prev.get_text().strip():
        value = (_attr(prev, "id") or _attr(prev, "name")).strip()
        if value:
            return value
    parent = heading.parent
    if isinstance(parent, Tag) and (
        parent.name == "section" or (parent.name == "div" and "section" in _classes(parent))
    ):
        ident = _attr(parent, "id").strip()
        if ident:
            for child in parent.children:
                if child is heading:
                    return ident
                if isinstance(child, Tag) and child.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
                    break
    return ""


def _has_text(tag: Tag) -> bool:
    return any(s.strip() for s in tag.strings)


def _scan_document(soup: BeautifulSoup) -> tuple[Tag, list[str]]:
    """The main content element (falling back to <body> or the whole document) and title candidates.

    One pass over the tags collects every candidate; the first root candidate with text wins in
    priority order. Title candidates are the <title> text (site suffix stripped) and og:title.
    """
    titles: list[str] = []
    og_titles: list[str] = []
    seen_title = False
    mains: list[Tag] = []
    articles: list[Tag] = []
    role_mains: list[Tag] = []
    containers: dict[tuple[str, str], Tag] = {}
    wanted = set(_CONTENT_CONTAINERS)
    for tag in soup.find_all(True):
        name = tag.name
        if name == "title" and not seen_title:  # only the first: nested <title>s would be quadratic
            seen_title = True
            text = _clean_title(tag.get_text())
            if text:
                titles.append(_strip_site_suffix(text))
        elif name == "meta" and not og_titles and "og:title" in (_attr(tag, "property"), _attr(tag, "name")):
            text = _clean_title(_attr(tag, "content"))
            if text:
                og_titles.append(text)
        elif name == "main":
            mains.append(tag)
        elif name == "article":
            articles.append(tag)
        if not tag.attrs:
            continue
        if _attr(tag, "role").lower() == "main":
            role_mains.append(tag)
        if name in ("body", "html"):
            continue
        ident = _attr(tag, "id")
        if ident and ("id", ident) in wanted:
            containers.setdefault(("id", ident), tag)
        for cls in _classes(tag):
            if ("class", cls) in wanted:
                containers.setdefault(("class", cls), tag)
    return _pick_root(soup, mains, articles, role_mains, containers), titles + og_titles


def _pick_root(
    soup: BeautifulSoup,
    mains: list[Tag],
    articles: list[Tag],
    role_mains: list[Tag],
    containers: dict[tuple[str, str], Tag],
) -> Tag:
    for tag in mains[:3]:
        if _has_text(tag):
            return tag
    with_text = [a for a in articles[:50] if _has_text(a)]
    if with_text:
        return with_text[0] if len(with_text) == 1 else max(with_text, key=lambda a: len(a.get_text()))
    for tag in role_mains[:3]:
        if _has_text(tag):
            return tag
    for key in _CONTENT_CONTAINERS:
        container = containers.get(key)
        if container is not None and _has_text(container):
            return container
    body = soup.find("body")
    return body if isinstance(body, Tag) else soup


def _strip_site_suffix(title: str) -> str:
    parts = [p.strip() for p in _TITLE_SEPARATOR.split(title)]
    return next((p for p in parts if p), title)


def _title_from_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    segment = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    segment = re.sub(r"\.(?:html?|php|aspx?|md)$", "", segment, flags=re.I)
    return _clean_title(segment or parts.netloc)


def _html_title(events: list[_Event], candidates: list[str], url: str) -> str:
    """First h1 of the content, else <title>, else og:title, else the URL's last segment."""
    for event in events:
        if event[0] == "h" and event[1] == 1:
            return event[2]
    return next(iter(candidates), "") or _title_from_url(url) or FALLBACK_TITLE


def _prepare_html(html: str) -> str:
    """Cut inert blocks (scripts, styles, inline SVG, comments) and self-close void tags before parsing.

    Both are speed fixes: inline SVG and scripts are often most of a page's bytes, and bs4's
    html.parser builder keeps every unclosed ``<br>``/``<img>`` in a list it scans on each end
    tag, which turns pages with thousands of them quadratic.
    """
    out: list[str] = []
    pos = 0
    while True:
        m = _INERT_OPEN.search(html, pos)
        if m is None:
            break
        if m.group(1) is None:
            end = html.find("-->", m.end())
            stop = end + 3
        else:
            close = _INERT_CLOSE[m.group(1).lower()].search(html, m.end())
            end = close.start() if close else -1
            stop = close.end() if close else -1
        if end < 0:
            break  # unclosed: leave the rest to the parser
        out.append(html[pos : m.start()])
        out.append(" ")
        pos = stop
    out.append(html[pos:])
    html = "".join(out)
    # A '<' after the last '>' can never close; html.parser rescans to the end for each one
    # (quadratic on truncated or hostile input), so make them text.
    last = html.rfind(">")
    if html.find("<", last + 1) >= 0:
        html = html[: last + 1] + html[last + 1 :].replace("<", "&lt;")
    # html.parser rejects IE conditional sections such as <![if !IE]>; show them as text instead.
    return _VOID_TAG.sub(r"<\1\2/>", _MARKED_SECTION.sub("&lt;![", html))


def _extract_html(html: str, url: str) -> Extracted:
    soup = BeautifulSoup(_prepare_html(html), "html.parser")
    root, title_candidates = _scan_document(soup)
    root_is_body = root is soup or root.name in ("body", "html")
    events = _HtmlRenderer(root, noise=_NoiseFilter(root_is_body), split_headings=True).render()
    return Extracted(_html_title(events, title_candidates, url), _assemble(events))


def _plain_fallback(html: str, url: str) -> Extracted:
    """Last resort when the parser gives up: regex-strip tags into one section."""
    try:
        m = _TITLE_TAG_RE.search(html)
        title = _clean_title(html_lib.unescape(_TAG_RE.sub("", m.group(1)))) if m else ""
        title = _strip_site_suffix(title) if title else (_title_from_url(url) or FALLBACK_TITLE)
        text = _clean_title(html_lib.unescape(_TAG_RE.sub(" ", _prepare_html(html))))
        return Extracted(title, (Section((), "", text),) if text else ())
    except Exception:  # the contract is to never raise
        logger.warning("plain-text fallback failed for %s", url or "<html>", exc_info=True)
        return Extracted(_title_from_url(url) or FALLBACK_TITLE, ())


def extract_html(html: str, url: str = "") -> Extracted:
    """Main content of an HTML page as a title and heading-scoped sections; never raises."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    html = html or ""
    try:
        return _extract_html(html, url)
    except RecursionError:
        logger.warning("HTML too deeply nested for the parser, using plain text: %s", url or "<html>")
    except Exception:
        logger.warning("HTML extraction failed, using plain text: %s", url or "<html>", exc_info=True)
    return _plain_fallback(html, url)


def _render_html_snippet(snippet: str) -> str:
    """Render an HTML fragment found inside markdown (tables mostly) with the same rules as pages."""
    soup = BeautifulSoup(snippet, "html.parser")
    events = _HtmlRenderer(soup, noise=None, split_headings=False).render()
    return _join_blocks([(e[1], e[2]) for e in events if e[0] == "b"])


# --------------------------------------------------------------------------- markdown

_MAX_INCLUDE_DEPTH = 3
_MAX_RESCANS = 50
_FENCE_OPEN = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^\s*(`{3,}|~{3,})\s*$")
_RAW_OPEN = re.compile(r"^\s*<(pre|style|script)\b", re.I)
_RAW_CLOSE = {name: re.compile(rf"</{name}", re.I) for name in ("pre", "style", "script")}
_TEMPLATE_LINE = re.compile(r"^\s*\{\{([^{}]*)\}\}\s*$")
_INCLUDE_PATH = re.compile(r"[\w./\-]+")
_INCLUDE_EXT = re.compile(r"\.(?:md|mdx|markdown|txt|html?)$", re.I)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_MAX_HEADING_CHARS = 300
_HTML_HEADING = re.compile(r"^\s{0,3}<h([1-6])\b([^>]*)>(.*?)</h\1\s*>\s*$", re.I)
_ID_ATTR = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""", re.I)
_A_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)
_CUSTOM_ID = re.compile(r"\s*\{\s*:?\s*#([^\s}]+)[^}]*\}\s*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_MD_LINK = re.compile(
    r"\[((?:[^\[\]\n]|\n(?![ \t]*\n))*(?:\[[^\[\]\n]*\][^\[\]\n]*)*)\]"
    r"\(\s*<?(?:[^()\s<>]|\([^()\s]*\))*>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
)
_MD_REF_LINK = re.compile(r"\[([^\[\]\n]+)\]\[[^\[\]\n]*\]")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s+\S+.*$", re.M)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>", re.I)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(.+?)(?<=\S)\1")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PLACEHOLDER = re.compile("\ue001(\\d+)\ue002")
_TAB_SWITCHER = re.compile(
    r"""<div\b[^<>]*>\s*(?:<a\b[^<>]*\bhref\s*=\s*["']#[^"'<>]*["'][^<>]*>[^<]*</a>\s*)+</div\s*>""", re.I
)
_ANY_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?/?>")
_INLINE_HTML_TAGS = frozenset(
    "a abbr b bdi bdo big cite del dfn em font i ins kbd mark nobr q s samp small span strike strong "
    "sub sup time tt u var wbr label input button source video audio picture iframe object embed svg "
    "path use".split()
)
_BLOCK_HTML_TAGS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr main nav ol p section summary table tbody td tfoot th "
    "thead tr ul caption colgroup col".split()
)
_HTML_BLOCK_START = re.compile(r"^ {0,3}</?(?:" + "|".join(sorted(_BLOCK_HTML_TAGS | {"li"})) + r")(?:\s|/?>|$)", re.I)
_FRONT_KEY = re.compile(r"^[\w.-]+\s*[:=]")


def _normalise(text: str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return (text or "").lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _yaml_scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return inner.replace("''", "'") if value[0] == "'" else inner.replace('\\"', '"')
    return re.sub(r"\s+#.*$", "", value).strip()


def _split_front_matter(text: str) -> tuple[str, str]:
    """Strip YAML (``---``) or TOML (``+++``) front matter; return (body, title or '')."""
    first, _, _ = text.partition("\n")
    marker = first.rstrip()
    if marker not in ("---", "+++"):
        return text, ""
    lines = text.split("\n")
    closers = ("---", "...") if marker == "---" else ("+++",)
    for end in range(1, len(lines)):
        if lines[end].rstrip() in closers:
            break
    else:
        return text, ""
    meta = lines[1:end]
    # A leading thematic break followed by prose is not front matter.
    for line in meta:
        keyed = _FRONT_KEY.match(line) or line.startswith("- ") or line.lstrip().startswith("#")
        if line.strip() and not line[:1].isspace() and not keyed:
            return text, ""
    title = ""
    for i, line in enumerate(meta):
        m = re.match(r"^title\s*[:=]\s*(.*)$", line)
        if not m:
            continue
        value = m.group(1).strip()
        if value in ("|", ">", "|-", ">-", "|+", ">+"):
            block = []
            for follow in meta[i + 1 :]:
                if follow.strip() and not follow[:1].isspace():
                    break
                block.append(follow.strip())
            value = " ".join(b for b in block if b)
        else:
            value = _yaml_scalar(value)
        title = _clean_title(value)
        break
    return "\n".join(lines[end + 1 :]), title


def _scan_once(lines: list[str], ignore: set[tuple[str, int]]) -> tuple[list[tuple[str, str]], tuple | None]:
    out: list[tuple[str, str]] = []
    fence: tuple[str, int, int] | None = None  # char, length, opening line
    comment_start = -1
    raw: tuple[str, str, int] | None = None  # kind ("pre" or "drop"), tag name, opening line
    for i, line in enumerate(lines):
        if fence is not None:
            out.append(("code", line))
            m = _FENCE_CLOSE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1]:
                fence = None
            continue
        if comment_start >= 0:
            end = line.find("-->")
            if end < 0:
                continue
            comment_start = -1
            line = line[end + 3 :]
            if not line.strip():
                continue
        if raw is not None:
            found = _RAW_CLOSE[raw[1]].search(line)
            end = found.start() if found else -1
            if end < 0:
                if raw[0] == "pre":
                    out.append(("pre", line))
                continue
            if raw[0] == "pre":
                out.append(("pre", line[:end]))
            raw = None
            line = _after_tag(line[end:])
            if not line.strip():
                continue
        m = _FENCE_OPEN.match(line)
        if m and ("fence", i) not in ignore and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = (m.group(1)[0], len(m.group(1)), i)
            out.append(("code", line))
            continue
        m = _RAW_OPEN.match(line)
        if m and ("raw", i) not in ignore:
            kind = m.group(1).lower()
            found = _RAW_CLOSE[kind].search(line)
            end = found.start() if found else -1
            if end < 0:
                raw = ("pre" if kind == "pre" else "drop", kind, i)
                if kind == "pre":
                    out.append(("pre", line))
                continue
            rest = _after_tag(line[end:])
            if kind == "pre":
                out.append(("pre", line[:end]))
            if not rest.strip():
                continue
            line = rest
        if "<!--" in line:
            line = _drop_closed_comments(line)
            start = line.find("<!--")
            if start >= 0:
                if ("comment", i) in ignore:
                    line = line.replace("<!--", "")
                else:
                    comment_start = i
                    line = line[:start]
            if not line.strip():
                continue
        out.append(("text", line))
    if fence is not None:
        return out, ("fence", fence[2])
    if raw is not None:
        return out, ("raw", raw[2])
    if comment_start >= 0:
        return out, ("comment", comment_start)
    return out, None


def _after_tag(text: str) -> str:
    """What follows the first tag in ``text`` (the rest of a line after ``</pre>``)."""
    close = text.find(">")
    return text[close + 1 :] if close >= 0 else ""


def _scan(lines: list[str]) -> list[tuple[str, str]]:
    """Classify lines as text, fenced code or raw <pre>, dropping comments and <style>/<script>.

    An opener never closed (a stray fence or ``<!--``) would swallow the rest of the file, so it
    is re-read as ordinary text instead.
    """
    ignore: set[tuple[str, int]] = set()
    out, unclosed = _scan_once(lines, ignore)
    for _ in range(_MAX_RESCANS):
        if unclosed is None:
            break
        ignore.add(unclosed)
        out, unclosed = _scan_once(lines, ignore)
    return out


def _drop_closed_comments(line: str) -> str:
    """Remove complete ``<!-- -->`` comments from a line (linear: no regex backtracking)."""
    out: list[str] = []
    pos = 0
    while True:
        start = line.find("<!--", pos)
        if start < 0:
            break
        end = line.find("-->", start + 4)
        if end < 0:
            break
        out.append(line[pos:start])
        pos = end + 3
    out.append(line[pos:])
    return "".join(out)


def _code_spans(text: str, replace: Callable[[str], str]) -> str:
    """Replace each inline code span (CommonMark: equal-length backtick runs within a paragraph).

    Done by hand in linear time; a regex over many unmatched backticks is quadratic.
    """
    if "`" not in text:
        return text
    out: list[str] = []
    pos = block_start = 0
    for para in _BLANK_LINE.finditer(text + "\n\n"):
        block_end = min(para.start(), len(text))
        runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text, block_start, block_end)]
        block_start = para.end()
        by_len: dict[int, list[int]] = {}
        for i, (start, end) in enumerate(runs):
            by_len.setdefault(end - start, []).append(i)
        cursor = {length: 0 for length in by_len}
        i = 0
        while i < len(runs):
            start, end = runs[i]
            length = end - start
            queue = by_len[length]
            k = cursor[length]
            while k < len(queue) and queue[k] <= i:
                k += 1
            cursor[length] = k
            if k == len(queue):
                i += 1
                continue
            close = runs[queue[k]]
            out.append(text[pos:start])
            out.append(replace(text[start : close[1]]))
            pos = close[1]
            i = queue[k] + 1
        if para.end() >= len(text):
            break
    out.append(text[pos:])
    return "".join(out)


def _replace_elements(text: str, name: str, replace: Callable[[str], str]) -> str:
    """Replace each balanced ``<name>...</name>`` element in markdown prose, in linear time."""
    opener = re.compile(rf"<{name}\b", re.I)
    if not opener.search(text):
        return text
    tags = re.compile(rf"<(/?){name}\b[^<>]*>?", re.I)
    out: list[str] = []
    pos = 0
    while True:
        m = opener.search(text, pos)
        if m is None:
            break
        depth, end = 0, -1
        for tag in tags.finditer(text, m.start()):
            depth += -1 if tag.group(1) else 1
            if depth == 0:
                end = tag.end()
                break
        if end < 0:
            break  # unclosed: leave the rest alone
        out.append(text[pos : m.start()])
        out.append(replace(text[m.start() : end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _looks_like_include(target: str) -> bool:
    return bool(_INCLUDE_PATH.fullmatch(target)) and ("/" in target or bool(_INCLUDE_EXT.search(target)))


def _resolve(resolver: IncludeResolver, target: str) -> str | None:
    try:
        fragment = resolver(target)
    except Exception:  # a broken resolver costs one include, not the page
        logger.warning("include resolver failed for %s", target, exc_info=True)
        return None
    return fragment if isinstance(fragment, str) else None


def _expand(text: str, resolver: IncludeResolver | None, depth: int, chain: tuple[str, ...]) -> list[tuple[str, str]]:
    """Scan one document and splice in its ``{{path}}`` includes (depth-limited, cycle-safe)."""
    out: list[tuple[str, str]] = []
    for kind, line in _scan(text.split("\n")):
        if kind == "text" and "{{" in line:
            m = _TEMPLATE_LINE.match(line)
            if m:
                target = m.group(1).strip()
                if (
                    resolver is not None
                    and _looks_like_include(target)
                    and depth < _MAX_INCLUDE_DEPTH
                    and target not in chain
                ):
                    fragment = _resolve(resolver, target)
                    if fragment is not None:
                        body, _ = _split_front_matter(_normalise(fragment))
                        out.extend(_expand(body, resolver, depth + 1, (*chain, target)))
                # Unresolved includes and bare directives such as {{tab}} render as nothing.
                continue
        out.append((kind, line))
    return out


def _strip_inline_markdown(text: str) -> str:
    """Reader-visible text of a heading: no links, images, tags, code ticks or emphasis marks."""
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    if "<" in text:
        text = _ANY_TAG.sub(
            lambda m: (
                "" if m.group(2).lower() in _INLINE_HTML_TAGS | _BLOCK_HTML_TAGS | {"code", "br", "img"} else m.group(0)
            ),
            text,
        )
    text = _code_spans(text, lambda span: span.strip("`").strip())
    text = _EMPHASIS.sub(r"\2", text)
    text = _MD_ESCAPE.sub(r"\1", text)
    if "&" in text:
        text = html_lib.unescape(text)
    return _clean_title(text)


def _markdown_heading(line: str) -> tuple[int, str, str] | None:
    """(level, text, explicit anchor) for an ATX or one-line HTML heading, else None."""
    anchor = ""
    m = _ATX.match(line)
    if m:
        level = len(m.group(1))
        raw = _CLOSING_HASHES.sub("", (m.group(2) or "")[: _MAX_HEADING_CHARS * 2].rstrip())
    else:
        if "<h" not in line and "<H" not in line:
            return None
        m = _HTML_HEADING.match(line)
        if not m:
            return None
        level = int(m.group(1))
        raw = m.group(3)[: _MAX_HEADING_CHARS * 2]
        ident = _ID_ATTR.search(m.group(2))
        anchor = ident.group(1).strip() if ident else ""
    custom = _CUSTOM_ID.search(raw)
    if custom:
        anchor = custom.group(1)
        raw = raw[: custom.start()]
    if not anchor:
        named = _A_ANCHOR.search(raw)
        if named:
            anchor = named.group(1).strip()
    return level, _strip_inline_markdown(raw), anchor


def _dedent_html_blocks(text: str) -> str:
    """Drop the indentation of raw HTML block lines, which would otherwise read as indented code.

    As in CommonMark, a block starts at a line opening with a block-level tag and ends at a blank line.
    """
    lines = text.split("\n")
    in_block = False
    for i, line in enumerate(lines):
        if not line.strip():
            in_block = False
        elif in_block or _HTML_BLOCK_START.match(line):
            in_block = True
            lines[i] = line.lstrip()
    return "\n".join(lines)


def _in_table_row(text: str, pos: int) -> bool:
    """Whether ``pos`` sits on a pipe-table line, where a line break would split the row."""
    return text[text.rfind("\n", 0, pos) + 1 : pos].lstrip().startswith("|")


def _html_tag_to_text(m: re.Match[str], table_row: bool) -> str:
    name = m.group(2).lower()
    if name == "code":
        return "`"
    if name in ("br", "hr"):
        return " " if table_row else "\n"
    if name == "img":
        return ""
    if name == "li":
        return "" if m.group(1) or table_row else "\n- "
    if name in _BLOCK_HTML_TAGS:
        return " " if table_row else "\n"
    if name in _INLINE_HTML_TAGS:
        return ""
    return m.group(0)  # <your_token>, List<String>: placeholders, not markup


def _clean_markdown_prose(text: str) -> str:
    """Markdown prose made plain: HTML and links reduced to text; inline code left untouched."""
    protected: list[str] = []

    def protect(span: str) -> str:
        protected.append(span)
        return f"\ue001{len(protected) - 1}\ue002"

    text = _code_spans(text, protect)
    if "<" in text:
        text = _dedent_html_blocks(text)
        for name in ("script", "style"):
            text = _replace_elements(text, name, lambda _: "")
        text = _replace_elements(text, "table", lambda block: "\n\n" + protect(_html_table(block)) + "\n\n")
        text = _TAB_SWITCHER.sub("", text)
        text = _AUTOLINK.sub(r"\1", text)
        text = _ANY_TAG.sub(lambda m: _html_tag_to_text(m, _in_table_row(m.string, m.start())), text)
    if "](" in text or "][" in text:
        text = _MD_IMAGE.sub("", text)
        text = _MD_LINK.sub(r"\1", text)
        text = _MD_REF_LINK.sub(r"\1", text)
    if "]:" in text:
        text = _LINK_DEF.sub("", text)
    if "&" in text:
        text = html_lib.unescape(text).replace("\xa0", " ")
    for _ in range(3):  # rendered HTML tables may carry placeholders of their own
        if "\ue001" not in text:
            break
        text = _PLACEHOLDER.sub(lambda m: protected[int(m.group(1))], text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _html_table(block: str) -> str:
    """An HTML table from markdown as pipe rows; cells may still hold markdown links."""
    rendered = _render_html_snippet(block)
    if "](" in rendered:
        rendered = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", rendered))
    return rendered


def _pre_block(lines: list[str]) -> str:
    """A raw ``<pre>`` block from markdown as a fenced block with its tags stripped."""
    raw = "\n".join(lines)
    raw = re.sub(r"^\s*<pre\b[^>]*>", "", raw, count=1, flags=re.I)
    code = html_lib.unescape(_TAG_RE.sub("", raw))
    code = re.sub(r"\A(?:[ \t]*\n)+", "", code)
    code = re.sub(r"(?:\n[ \t]*)+\Z", "", code)
    return _fenced(code) if code.strip() else ""


def _render_markdown_body(body: list[tuple[str, str]]) -> str:
    pieces: list[str] = []
    i = 0
    while i < len(body):
        kind = body[i][0]
        j = i + 1
        while j < len(body) and body[j][0] == kind and not (kind == "pre" and _RAW_OPEN.match(body[j][1])):
            j += 1
        lines = [line for _, line in body[i:j]]
        if kind == "code":
            piece = "\n".join(lines)
        elif kind == "pre":
            piece = _pre_block(lines)
        else:
            piece = _clean_markdown_prose("\n".join(lines))
        if piece.strip():
            pieces.append(piece)
        i = j
    return "\n\n".join(pieces)


def _extract_markdown(text: str, path_hint: str, resolver: IncludeResolver | None) -> Extracted:
    body, title = _split_front_matter(_normalise(text))
    lines = _expand(body, resolver, 0, ())
    anchors = _Anchors()
    events: list[_Event] = []
    pending: list[tuple[str, str]] = []
    first_h1 = ""

    def flush() -> None:
        if pending:
            rendered = _render_markdown_body(pending)
            if rendered:
                events.append(("b", "md", rendered))
            pending.clear()

    for kind, line in lines:
        if kind == "text" and ("#" in line or "<h" in line or "<H" in line):
            heading = _markdown_heading(line)
            if heading is not None and heading[0] <= 4:
                level, heading_text, anchor = heading
                if heading_text:
                    flush()
                    anchor = anchors.explicit(anchor) if anchor else anchors.slug(heading_text)
                    events.append(("h", level, heading_text, anchor))
                    if level == 1 and not first_h1:
                        first_h1 = heading_text
                continue
        pending.append((kind, line))
    flush()
    title = title or first_h1 or _clean_title(_stem(path_hint)) or FALLBACK_TITLE
    return Extracted(title, _assemble(events))


def _stem(path_hint: str) -> str:
    if not path_hint:
        return ""
    try:
        return PurePosixPath(path_hint.replace("\\", "/").rstrip("/")).stem
    except Exception:  # a weird hint only loses the fallback title
        return ""


def extract_markdown(text: str, *, path_hint: str = "", include_resolver: IncludeResolver | None = None) -> Extracted:
    """Markdown (with front matter, includes and inline HTML) as title plus sections; never raises."""
    try:
        return _extract_markdown(text, path_hint, include_resolver)
    except Exception:
        logger.warning("markdown extraction failed, using raw text: %s", path_hint or "<markdown>", exc_info=True)
    try:
        raw = _normalise(text).strip()
        title = _clean_title(_stem(path_hint)) or FALLBACK_TITLE
        return Extracted(title, (Section((), "", raw),) if raw else ())
    except Exception:  # the contract is to never raise
        return Extracted(FALLBACK_TITLE, ())
