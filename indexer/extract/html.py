"""Main content of fetched HTML pages as a title plus heading-scoped sections.

Pure and synchronous (the indexer runs it in a worker thread) and never raises: a page that cannot be
parsed degrades to plain text. Section text is light markdown so that the chunker and the model see
paragraphs, lists, tables and fenced code the way a reader would. The markdown extractor renders HTML
blocks found in markdown through the same rules (``render_html_snippet``).
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString

from indexer.extract.common import FALLBACK_TITLE, Anchors, Event, Extracted, assemble, clean_title, fenced
from rag.models import Section

logger = logging.getLogger(__name__)

_WS = re.compile(r"\s+")

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
        if _dropped(node, noise):
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


def _dropped(node: Tag, noise: _NoiseFilter | None) -> bool:
    """Elements whose text never counts: scripts, styles and the like, and page chrome the noise filter spots."""
    return node.name in _DROP_TAGS or (noise is not None and noise.is_noise(node))


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
            if _dropped(node, noise):
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

    def __init__(
        self, root: Tag, *, noise: _NoiseFilter | None, split_headings: bool, anchors: Anchors | None = None
    ) -> None:
        self._root = root
        self._noise = noise
        self._split = split_headings
        self._anchors = anchors if anchors is not None else Anchors()
        self.events: list[Event] = []
        self._inline: list[str] = []
        self._lists: list[list] = []  # [ordered, next number]
        self._items: list[list] = []  # [pending marker or None, continuation indent]
        self._new_list = False

    def render(self) -> list[Event]:
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
                self.events.append(("b", "code", fenced(code, _code_language(tag))))
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
            text = clean_title(tag.get_text())
            if text:
                titles.append(_strip_site_suffix(text))
        elif name == "meta" and not og_titles and "og:title" in (_attr(tag, "property"), _attr(tag, "name")):
            text = clean_title(_attr(tag, "content"))
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
    return clean_title(segment or parts.netloc)


def _html_title(events: list[Event], candidates: list[str], url: str) -> str:
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
    return Extracted(_html_title(events, title_candidates, url), assemble(events))


def _plain_fallback(html: str, url: str) -> Extracted:
    """Last resort when the parser gives up: regex-strip tags into one section."""
    try:
        m = _TITLE_TAG_RE.search(html)
        title = clean_title(html_lib.unescape(_TAG_RE.sub("", m.group(1)))) if m else ""
        title = _strip_site_suffix(title) if title else (_title_from_url(url) or FALLBACK_TITLE)
        text = clean_title(html_lib.unescape(_TAG_RE.sub(" ", _prepare_html(html))))
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


class _SnippetNoise(_NoiseFilter):
    """In HTML embedded in markdown only tab switchers are chrome: a div of nothing but ``#`` links."""

    def __init__(self) -> None:
        super().__init__(root_is_body=False)

    def is_noise(self, tag: Tag) -> bool:
        if tag.name != "div":
            return False
        links = 0
        for child in tag.children:
            if isinstance(child, Tag):
                if child.name != "a" or not _attr(child, "href").startswith("#"):
                    return False
                links += 1
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString) and child.strip():
                return False
        return links > 0


def render_html_snippet(snippet: str, anchors: Anchors) -> list[Event]:
    """Events for an HTML block found inside markdown, rendered with the same rules as pages.

    Headings (h1-h4) split sections and share the markdown document's anchors.
    """
    soup = BeautifulSoup(_prepare_html(snippet), "html.parser")
    return _HtmlRenderer(soup, noise=_SnippetNoise(), split_headings=True, anchors=anchors).render()
