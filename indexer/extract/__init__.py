"""Turn fetched HTML pages and markdown files into a title plus heading-scoped sections.

Both extractors are pure and synchronous (the indexer runs them in a worker thread) and never raise: a page
that cannot be parsed degrades to plain text, or to no sections at all, rather than aborting an index run.
Section text is light markdown so that the chunker and the model see paragraphs, lists, tables and fenced
code the way a reader would. ``html`` holds the HTML rules, ``markdown`` the markdown-it-py based parser.
"""

from indexer.extract.common import FALLBACK_TITLE, Extracted, IncludeResolver, slugify
from indexer.extract.html import extract_html
from indexer.extract.markdown import extract_markdown

__all__ = ["FALLBACK_TITLE", "Extracted", "IncludeResolver", "extract_html", "extract_markdown", "slugify"]
