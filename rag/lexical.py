"""Text normalisation for the BM25 side of hybrid search, applied identically to chunks and queries.

Milvus Lite's analyzers lowercase and split on ``\\w+`` but do not stem, so "partitions" never matches
"partition". Stemming here, before Milvus sees the text, gives every deployment (Lite or a server) the same
behaviour. Identifiers are kept whole and also split into their parts, so ``load_collection`` and
``loadCollection`` match a question about "load collection".
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

LEXICAL_VERSION = "2"
# Scripts written without spaces: a run of them is a term of its own, so a Latin word glued to Chinese or
# Japanese text ("milvus带有token") is still found.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(
    rf"[{_UNSPACED}]+|[^\W_{_UNSPACED}]+(?:[_.\-][^\W_{_UNSPACED}]+)*",
    re.UNICODE,
)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_PARTS = re.compile(r"[_.\-]")
_STEMMER = snowballstemmer.stemmer("english")
# Common English function words plus chat filler; BM25's IDF discounts the rest.
STOP_WORDS = frozenset(
    """a an and are as at be but by can could do does did for from had has have how i if in into is it its
    me my no not of on or our so than that the their them then there these they this to too was we were what
    when where which who why will with would you your yours i'm im pls please hi hello hey thanks thank guys
    anyone someone help any some just get got u ur""".split()
)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def _terms(token: str) -> list[str]:
    """A token, lowercased, plus its identifier parts when it has any."""
    whole = token.lower()
    if not token.isascii():
        return [whole]
    parts = [p.lower() for piece in _PARTS.split(token) for p in _CAMEL.findall(piece)]
    if len(parts) <= 1:
        return [whole]
    return [whole.replace(".", "_").replace("-", "_"), *parts]


def lexical_text(text: str) -> str:
    """Space-separated stemmed terms of ``text`` without stop words; what BM25 indexes and searches."""
    out: list[str] = []
    for match in _WORD.finditer(text):
        for term in _terms(match.group()):
            if term not in STOP_WORDS:
                out.append(_stem(term) if term.isalpha() else term)
    return " ".join(out)
