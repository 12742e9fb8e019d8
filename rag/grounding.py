"""Does each sentence of an answer say what its cited source says?

A small model swaps facts between sources and adds things no source holds; a citation then makes a wrong sentence
look checked. This measures, per sentence, how much of what it states appears in the source it cites: the share of
its content terms (stemmed words, identifiers, numbers, as BM25 sees them) found in that source's passages, with a
number the source does not hold counting against it. It is lexical on purpose: cheap enough to run on every answer,
and it cannot be talked into agreeing. ``bench.answers`` measures how well it agrees with hand labels.

A sentence without a citation borrows the nearest one after it in the same paragraph (claims often run over two
sentences with the marker at the end), else the one before it. Code blocks, headings and sentences with too few
terms to judge are not claims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt

from rag.lexical import lexical_text

SUPPORT_THRESHOLD = 0.6
MIN_TERMS = 3
_MARKERS = re.compile(r"\[(\d{1,3})\]")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
# A sentence ends at . ! ? (or their CJK forms) followed by space or the end, and not after a common abbreviation.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)(?:\s*(?:\[\d{1,3}\])+)?\s+|(?<=[。！？])"
)
_PARSER = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer and what its citations make of it."""

    text: str
    cited: tuple[int, ...]  # its own markers, or those it borrows
    support: float  # best share of its terms found in one of the cited sources (0 without a citation)
    best_source: int | None  # the given source that holds most of it, cited or not
    best_support: float
    claim: bool  # False: too short to judge, a question, or a statement that the docs lack something

    @property
    def supported(self) -> bool:
        return self.claim and self.support >= SUPPORT_THRESHOLD


def sentences(markdown: str) -> list[tuple[int, str]]:
    """(paragraph number, sentence) for the prose of a markdown answer; code blocks and headings are left out."""
    out: list[tuple[int, str]] = []
    tokens = _PARSER.parse(markdown)
    paragraph = 0
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline" and not in_heading:
            paragraph += 1
            for line in token.content.splitlines():
                for part in _split(line):
                    if part.strip():
                        out.append((paragraph, part.strip()))
    return out


def _split(text: str) -> list[str]:
    """Split prose into sentences without breaking inside inline code (``app.mount``, ``a. b``)."""
    protected = _CODE_SPAN.sub(lambda m: "\x00" * len(m.group()), text)  # same length: offsets still hold
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(protected):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return pieces


@lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """What a sentence or passage states, as comparable terms: BM25's stemmed words, without markers or 1-letter
    terms."""
    plain = _MARKERS.sub(" ", text)
    return frozenset(t for t in lexical_text(plain).split() if len(t) > 1)


def _is_number(term: str) -> bool:
    return any(ch.isdigit() for ch in term)


def support(sentence_terms: frozenset[str], source_terms: frozenset[str]) -> float:
    """The share of the sentence's terms the source holds; a number it does not hold halves the share."""
    if not sentence_terms:
        return 0.0
    share = len(sentence_terms & source_terms) / len(sentence_terms)
    if any(_is_number(t) and t not in source_terms for t in sentence_terms):
        share *= 0.5
    return share


_LACKS = re.compile(
    r"(?:does not|doesn't|do not|don't|did not|didn't)\s+(?:cover|mention|say|describe|specify|include|explain)"
    r"|not (?:covered|mentioned|described|specified|documented)|no information|couldn't find|could not find"
    r"|isn't (?:covered|mentioned|documented)|没有|未提及|未说明",
    re.IGNORECASE,
)


def check(answer: str, sources: Mapping[int, str]) -> list[Sentence]:
    """Judge each sentence of ``answer`` against ``sources`` (citation number -> the passages the model saw)."""
    source_terms = {number: terms(text) for number, text in sources.items()}
    parsed = sentences(answer)
    own = [tuple(int(n) for n in _MARKERS.findall(text)) for _, text in parsed]
    out: list[Sentence] = []
    for index, (paragraph, text) in enumerate(parsed):
        cited = own[index] or _borrowed(parsed, own, index, paragraph)
        sentence_terms = terms(text)
        claim = len(sentence_terms) >= MIN_TERMS and not text.rstrip().endswith("?") and not _LACKS.search(text)
        scores = {number: support(sentence_terms, st) for number, st in source_terms.items()}
        cited_scores = [scores[n] for n in cited if n in scores]
        best = max(scores, key=lambda n: scores[n], default=None)
        out.append(
            Sentence(
                text=text,
                cited=cited,
                support=max(cited_scores, default=0.0),
                best_source=best,
                best_support=scores[best] if best is not None else 0.0,
                claim=claim,
            )
        )
    return out


def _borrowed(
    parsed: Sequence[tuple[int, str]], own: Sequence[tuple[int, ...]], index: int, paragraph: int
) -> tuple[int, ...]:
    for later in range(index + 1, len(parsed)):
        if parsed[later][0] != paragraph:
            break
        if own[later]:
            return own[later]
    for earlier in range(index - 1, -1, -1):
        if parsed[earlier][0] != paragraph:
            break
        if own[earlier]:
            return own[earlier]
    return ()


def supported_share(checked: Sequence[Sentence]) -> float | None:
    """The share of claim sentences their citation supports; None when the answer makes no claim."""
    claims = [s for s in checked if s.claim]
    if not claims:
        return None
    return sum(1 for s in claims if s.supported) / len(claims)


@dataclass(frozen=True)
class Revision:
    """An answer after its grounding check."""

    text: str
    verdict: str  # "grounded", "uncertain" (no sentence tied to a source), or "not covered" (the model declined)
    recited: int = 0
    dropped: int = 0


_NOT_COVERED = re.compile(
    r"^\W*(?:the )?(?:docs|documentation|sources?)\s+(?:don't|do not|doesn't|does not)\s+cover\b", re.IGNORECASE
)


def declined(text: str) -> bool:
    """The model said the sources do not answer, and cited nothing else (a short answer may carry a stray [1])."""
    plain = _MARKERS.sub("", text).strip()
    return bool(_NOT_COVERED.match(plain)) and (not _MARKERS.search(text) or len(plain) < 80)


def revise(text: str, sources: Mapping[int, str], *, drop: bool) -> Revision:
    """Cite each sentence to a source that holds it: a sentence its citation does not support moves to the given
    source that does; with ``drop``, a sentence no source holds goes (while a supported one remains). An answer
    without a citation, or whose statements no source holds, is ``uncertain``."""
    if declined(text):
        return Revision(text, "not covered")
    checked = check(text, sources)
    revised = text
    recited = dropped = 0
    keep_any = any(s.supported or s.best_support >= SUPPORT_THRESHOLD for s in checked if s.claim)
    for sentence in checked:
        if not sentence.claim or sentence.supported:
            continue
        if sentence.best_source is not None and sentence.best_support >= SUPPORT_THRESHOLD:
            revised = revised.replace(sentence.text, _cite(sentence.text, sentence.best_source), 1)
            recited += 1
        elif drop and keep_any:
            revised = revised.replace(sentence.text, "", 1)
            dropped += 1
    revised = re.sub(r"[ \t]{2,}", " ", re.sub(r"\n{3,}", "\n\n", revised)).strip()
    claims = [s for s in check(revised, sources) if s.claim]
    # Tied to the docs: it cites, and if it states anything, a source holds at least one of its statements.
    grounded = bool(_MARKERS.search(revised)) and (not claims or any(s.supported for s in claims))
    return Revision(revised, "grounded" if grounded else "uncertain", recited, dropped)


def _cite(sentence: str, number: int) -> str:
    """The sentence with its markers replaced by ``[number]``, before its closing punctuation."""
    bare = _MARKERS.sub("", sentence).rstrip()
    end = len(bare.rstrip(".!?。！？:;"))
    return f"{bare[:end].rstrip()} [{number}]{bare[end:]}"
