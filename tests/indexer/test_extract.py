"""Extraction turns real-world pages into clean, heading-scoped sections without ever raising."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.extract import FALLBACK_TITLE, Extracted, extract_html, extract_markdown, slugify

MILVUS_DOCS = Path(__file__).resolve().parents[3] / "shared/corpora/milvus-docs"


def all_text(extracted: Extracted) -> str:
    return "\n".join(s.text for s in extracted.sections)


def section(extracted: Extracted, *headings: str):
    for s in extracted.sections:
        if s.headings == headings:
            return s
    raise AssertionError(f"no section {headings!r} in {[s.headings for s in extracted.sections]}")


# --------------------------------------------------------------------------- slugify


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Install with Docker", "install-with-docker"),
        ("What's new?", "whats-new"),
        ("log.level", "loglevel"),
        ("IVF_FLAT", "ivf_flat"),
        ("C++ & Rust", "c--rust"),
        ("  Spaces   collapse ", "spaces-collapse"),
        ("Überblick", "überblick"),
        ("1. Install minikube", "1-install-minikube"),
    ],
)
def test_slugify_is_github_style(heading: str, slug: str) -> None:
    assert slugify(heading) == slug


# --------------------------------------------------------------------------- HTML

DOC_PAGE = """<!doctype html>
<html><head><title>Installation | Docent Docs</title>
<script>var tracking = "SCRIPT-TEXT";</script><style>.x { color: red }</style></head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="site-header"><h1>Docent Site Logo</h1><nav><a href="/">Home</a></nav></header>
<div class="sidebar"><ul><li><a href="/a">SIDEBAR-LINK</a></li></ul></div>
<main>
  <nav class="breadcrumbs"><a href="/">BREADCRUMB</a></nav>
  <article>
    <header><h1>Installation</h1><p>Updated 2024</p></header>
    <p>Docent runs   anywhere
       Python runs. See <a href="https://example.org/x">the guide</a>.<img src="x.png" alt="diagram"></p>
    <div class="toc"><a href="#docker">TOC-ENTRY</a></div>
    <h2 id="docker">With Docker<a class="headerlink" href="#docker">¶</a></h2>
    <p>Pull the image with <code>docker pull</code>.</p>
    <form><input name="q"><button>SEARCH-BUTTON</button></form>
    <a class="theme-edit-this-page" href="https://github.com/x/edit">EDIT-THIS-PAGE</a>
  </article>
  <aside>ASIDE-TEXT</aside>
</main>
<footer>FOOTER-TEXT</footer>
<div id="cookie-banner">COOKIE-TEXT</div>
<noscript>NOSCRIPT-TEXT</noscript>
</body></html>"""


def test_html_keeps_main_content_and_drops_chrome() -> None:
    extracted = extract_html(DOC_PAGE, "https://docs.example.org/install/")
    text = all_text(extracted)
    assert "Docent runs anywhere Python runs. See the guide." in text
    assert "Pull the image with `docker pull`." in text
    for noise in (
        "SCRIPT-TEXT",
        "color: red",
        "Skip to content",
        "Site Logo",
        "SIDEBAR-LINK",
        "BREADCRUMB",
        "TOC-ENTRY",
        "SEARCH-BUTTON",
        "EDIT-THIS-PAGE",
        "ASIDE-TEXT",
        "FOOTER-TEXT",
        "COOKIE-TEXT",
        "NOSCRIPT-TEXT",
        "¶",
        "https://",
        "diagram",
    ):
        assert noise not in text, noise


def test_html_header_inside_article_keeps_its_h1_as_title_and_heading() -> None:
    extracted = extract_html(DOC_PAGE)
    assert extracted.title == "Installation"
    assert section(extracted, "Installation").text.startswith("Updated 2024")
    assert section(extracted, "Installation", "With Docker").anchor == "docker"


def test_html_role_navigation_and_sidebar_classes_are_removed() -> None:
    html = """<body><div role="main">
      <div role="navigation">NAV-ROLE</div><div class="md-sidebar md-sidebar--primary">MD-SIDEBAR</div>
      <div class="wy-breadcrumbs">CRUMBS</div><div class="menuselection-note">File menu text</div>
      <p>Body text.</p></div></body>"""
    text = all_text(extract_html(html))
    assert "Body text." in text
    assert "File menu text" in text  # "menuselection" is not the word "menu"
    assert "NAV-ROLE" not in text and "MD-SIDEBAR" not in text and "CRUMBS" not in text


def test_html_content_section_named_navigation_survives() -> None:
    """Sphinx gives sections ids from their headings: id-based heuristics must not delete them."""
    html = """<div role="main"><section id="navigation"><h2>Navigation</h2>
      <p>How the navigation settings work.</p></section></div>"""
    extracted = extract_html(html)
    assert section(extracted, "Navigation").text == "How the navigation settings work."
    assert section(extracted, "Navigation").anchor == "navigation"


@pytest.mark.parametrize(
    ("html", "url", "title"),
    [
        ("<head><title>Ignored</title></head><body><h1>First <em>Heading</em></h1></body>", "", "First Heading"),
        ("<html><head><title>Quickstart | Docent Docs</title></head><body><p>x</p></body></html>", "", "Quickstart"),
        ("<title>Config — Proj 1.0 documentation</title><p>x</p>", "", "Config"),
        ("<title>Deploy - Docent</title><p>x</p>", "", "Deploy"),
        ('<head><meta property="og:title" content="From OG"></head><body><p>x</p></body>', "", "From OG"),
        ("<p>x</p>", "https://docs.example.org/guide/getting-started.html", "getting-started"),
        ("<p>x</p>", "https://docs.example.org/guide/", "guide"),
        ("<p>x</p>", "", FALLBACK_TITLE),
        ("<svg><title>Icon</title></svg><p>x</p>", "", FALLBACK_TITLE),
    ],
)
def test_html_title_fallbacks(html: str, url: str, title: str) -> None:
    assert extract_html(html, url).title == title


def test_html_heading_paths_and_anchors() -> None:
    html = """<main>
      <p>Intro before any heading.</p>
      <h1 id="top">Guide</h1><p>Guide text.</p>
      <h2>Install Steps</h2><p>Install text.</p>
      <h3><a name="docker-anchor"></a>With Docker</h3><p>Docker text.</p>
      <h4>Compose</h4><p>Compose text.</p>
      <section id="from-section"><h3>Sectioned</h3><p>Section text.</p></section>
      <h2>Usage</h2><p>Usage text.</p>
      <h2>Usage</h2><p>Second usage text.</p>
      <h5>Minor heading</h5><p>Under minor.</p>
      <h2>Empty</h2>
      <h2>Last</h2><p>Last text.</p>
    </main>"""
    extracted = extract_html(html)
    got = [(s.headings, s.anchor) for s in extracted.sections]
    assert got == [
        ((), ""),
        (("Guide",), "top"),
        (("Guide", "Install Steps"), "install-steps"),
        (("Guide", "Install Steps", "With Docker"), "docker-anchor"),
        (("Guide", "Install Steps", "With Docker", "Compose"), "compose"),
        (("Guide", "Install Steps", "Sectioned"), "from-section"),
        (("Guide", "Usage"), "usage"),
        (("Guide", "Usage"), "usage-1"),
        (("Guide", "Last"), "last"),
    ]
    assert extracted.sections[0].text == "Intro before any heading."
    # h5 and below do not split; their text stays in the section.
    assert section(extracted, "Guide", "Usage").text == "Usage text."
    assert "Minor heading\n\nUnder minor." in extracted.sections[7].text


def test_html_code_blocks_keep_whitespace_exactly() -> None:
    code = "def f(x):\n\tif x:\n        return  x   # two  spaces\n\n    pass"
    html = (
        '<article><p>Example:</p><pre class="language-python"><code>'
        + code.replace("<", "&lt;")
        + '\n</code></pre><div class="highlight-bash"><div class="highlight"><pre>'
        '<span class="n">echo</span>   <span>"a   b"</span><br><span>ls</span></pre></div></div>'
        "<p>Inline <code>a   b</code> code.</p></article>"
    )
    text = all_text(extract_html(html))
    assert f"```python\n{code}\n```" in text
    assert '```bash\necho   "a   b"\nls\n```' in text
    assert "Inline `a b` code." in text


def test_html_code_containing_fences_gets_a_longer_fence() -> None:
    text = all_text(extract_html("<pre>```\nnested\n```</pre>"))
    assert text == "````\n```\nnested\n```\n````"


def test_html_lists_render_as_markdown() -> None:
    html = """<article><ul><li>First <b>item</b></li>
      <li>Second<ol><li>one</li><li>two<ul><li>deep</li></ul></li></ol></li>
      <li><p>Para item</p><p>continued</p></li></ul>
      <ol start="3"><li>three</li><li>four</li></ol></article>"""
    text = all_text(extract_html(html))
    assert text == (
        "- First item\n- Second\n  1. one\n  2. two\n     - deep\n- Para item\n  continued\n\n3. three\n4. four"
    )


def test_html_tables_render_as_pipe_rows() -> None:
    html = """<article><table><caption>Options</caption>
      <thead><tr><th>Name</th><th>Default</th></tr></thead>
      <tbody><tr><td><code>TOKEN</code></td><td>a | b</td></tr>
      <tr><td>PORT</td><td><ul><li>8080</li><li>or 80</li></ul></td></tr>
      <tr><td>   </td><td></td></tr></tbody></table></article>"""
    text = all_text(extract_html(html))
    assert text == ("Options\n\n| Name | Default |\n|---|---|\n| `TOKEN` | a \\| b |\n| PORT | 8080; or 80 |")


def test_html_layout_table_with_code_is_walked_not_flattened() -> None:
    html = """<article><table class="highlighttable"><tr><td class="linenos"><div class="linenodiv">
      <pre>1\n2</pre></div></td><td class="code"><div class="highlight"><pre>a = 1\nb = 2</pre></div></td>
      </tr></table></article>"""
    assert all_text(extract_html(html)) == "```\na = 1\nb = 2\n```"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n  ",
        "<",
        "</div></div></span>",
        "<div><p>Unclosed <b>bold <i>italic",
        "<p>one<p>two</div></div><h2>Head<p>after",
        "<![if !IE]><p>conditional</p><![endif]>",
        "<!DOCTYPE html><html><body>\ufffd\ufffd<p>bad \ufffd bytes</p>",
        "<table><tr><td>cell",
        "<pre>unclosed code",
        "<script>never closed",
        "<!-- never closed",
        "\x00\x01<p>\x00nul</p>",
    ],
)
def test_html_broken_input_never_raises(html: str) -> None:
    extracted = extract_html(html, "https://x.org/page")
    assert isinstance(extracted, Extracted)
    assert extracted.title
    assert all(s.text.strip() for s in extracted.sections)


def test_html_broken_markup_still_yields_text() -> None:
    extracted = extract_html("<div><p>one<p>two</div></div><h2>Head<p>after")
    assert "one" in all_text(extracted) and "two" in all_text(extracted)
    assert section(extracted, "Head").text == "after"


def test_html_empty_string_gives_no_sections_and_a_title() -> None:
    assert extract_html("") == Extracted(FALLBACK_TITLE, ())
    assert extract_html("", "https://x.org/docs/intro").title == "intro"


def test_html_deeply_nested_divs_do_not_crash() -> None:
    html = "<div>" * 5000 + "<h2 id='deep'>Deep</h2><p>hello from the bottom</p>" + "</div>" * 5000
    extracted = extract_html(html)
    assert section(extracted, "Deep").text == "hello from the bottom"
    assert section(extracted, "Deep").anchor == "deep"


def test_html_large_page_keeps_every_section() -> None:
    """A 2 MB page is extracted whole (its speed is measured by ``python -m bench.extract``)."""
    prose = "Docent indexes documentation pages and answers questions with citations. " * 3
    unit = (
        f'<h2 id="s{{i}}">Section {{i}}</h2><p>{prose}Some <b>bold</b> text with <a href="#">a link</a> '
        f"and <code>code</code>.</p><p>{prose}</p><pre>line one<br>line two</pre>"
        "<ul><li>first item</li><li>second<br>item</li></ul>"
        "<table><tr><th>key</th><th>value</th></tr><tr><td>1</td><td>2</td></tr></table>\n"
    )
    count = 2_000_000 // len(unit)
    body = "".join(unit.format(i=i) for i in range(count))
    extracted = extract_html(f"<html><body><nav>menu</nav><main>{body}</main></body></html>")
    assert [(s.headings, s.anchor) for s in extracted.sections] == [((f"Section {i}",), f"s{i}") for i in range(count)]
    assert len({s.text for s in extracted.sections}) == 1
    assert extracted.sections[-1].text.endswith(
        "Some bold text with a link and `code`.\n\n" + prose.strip() + "\n\n```\nline one\nline two\n```\n\n"
        "- first item\n- second\n  item\n\n| key | value |\n|---|---|\n| 1 | 2 |"
    )
    assert "menu" not in all_text(extracted)


# Inputs that once made extraction quadratic (or worse). Here they must come out whole and right; how long they
# take is measured by `python -m bench.extract`, which runs them at two sizes and reports the growth.
HOSTILE_HTML = {
    "unclosed-tags": "<div " * 50_000,  # no '>' anywhere: html.parser alone would rescan to the end for each '<'
    "titles": "<title>" * 20_000,
    "nested-lists": "<ul><li>" * 10_000 + "deep item",
    "void-tags": "<br>" * 50_000 + "<p>after breaks</p>",
}


@pytest.mark.parametrize("name", HOSTILE_HTML)
def test_html_hostile_input_is_extracted_whole(name: str) -> None:
    html = HOSTILE_HTML[name]
    extracted = extract_html(html)
    texts = [s.text.strip() for s in extracted.sections]
    expected = {
        "unclosed-tags": [html.strip()],  # every '<' kept as text, none lost
        "titles": [],
        "nested-lists": ["- deep item"],
        "void-tags": ["after breaks"],
    }
    assert texts == expected[name]
    assert extracted.title == FALLBACK_TITLE


# --------------------------------------------------------------------------- markdown

MD_PAGE = """---
id: guide.md
title: "Install: the \\"easy\\" way"
summary: Something.
---

Intro paragraph with a [link](https://example.org "t") and ![diagram](img.png).

# Install Guide

Text under h1.

## With Docker {#docker-custom}

```bash
# this is a comment, not a heading
docker run docent
```

~~~
## also not a heading
~~~

### Compose ###

Compose text.
"""


def test_markdown_front_matter_title_and_stripping() -> None:
    extracted = extract_markdown(MD_PAGE, path_hint="docs/guide.md")
    assert extracted.title == 'Install: the "easy" way'
    text = all_text(extracted)
    assert "summary:" not in text and "id: guide.md" not in text
    assert extracted.sections[0].headings == ()
    assert extracted.sections[0].text == "Intro paragraph with a link and ."


def test_markdown_headings_code_fences_and_custom_anchors() -> None:
    extracted = extract_markdown(MD_PAGE)
    assert [(s.headings, s.anchor) for s in extracted.sections] == [
        ((), ""),
        (("Install Guide",), "install-guide"),
        (("Install Guide", "With Docker"), "docker-custom"),
        (("Install Guide", "With Docker", "Compose"), "compose"),
    ]
    docker = section(extracted, "Install Guide", "With Docker").text
    assert "```bash\n# this is a comment, not a heading\ndocker run docent\n```" in docker
    assert "~~~\n## also not a heading\n~~~" in docker


@pytest.mark.parametrize(
    ("text", "hint", "title"),
    [
        ("# From Heading\n\nbody", "x/y.md", "From Heading"),
        ("---\ntitle: 'It''s quoted'\n---\n# Other\n", "", "It's quoted"),
        ("---\ntitle: >\n  Folded\n  title\n---\nbody", "", "Folded title"),
        ("## Only h2\n\nbody", "docs/load_balance.md", "load_balance"),
        ("body only", "", FALLBACK_TITLE),
        ("", "a/b/c.md", "c"),
        ("# [Linked](x.md) `code` **bold** title\n", "", "Linked code bold title"),
    ],
)
def test_markdown_title_fallbacks(text: str, hint: str, title: str) -> None:
    assert extract_markdown(text, path_hint=hint).title == title


def test_markdown_leading_thematic_break_is_not_front_matter() -> None:
    # A blank line before the closing rule: "prose\n---" is a setext heading in CommonMark.
    extracted = extract_markdown("---\nJust prose here.\n\n---\n\n# Title\n\nbody")
    assert "Just prose here." in all_text(extracted)
    assert extracted.title == "Title"


def test_markdown_includes_are_resolved_recursively() -> None:
    fragments = {
        "fragments/outer.md": "---\nid: outer\n---\nOuter text.\n\n{{fragments/inner.md}}",
        "fragments/inner.md": "### Inner heading\n\nInner text.",
    }
    text = "# Page\n\n## Part\n\n{{fragments/outer.md}}\n\n{{ fragments/missing.md }}\n\nAfter."
    extracted = extract_markdown(text, include_resolver=fragments.get)
    assert section(extracted, "Page", "Part").text == "Outer text."
    assert section(extracted, "Page", "Part", "Inner heading").text == "Inner text.\n\nAfter."
    assert "{{" not in all_text(extracted) and "id: outer" not in all_text(extracted)


def test_markdown_include_cycle_stops() -> None:
    calls: list[str] = []

    def resolver(path: str) -> str | None:
        calls.append(path)
        other = "b.md" if path == "a.md" else "a.md"
        return f"text of {path}\n\n{{{{{other}}}}}\n"

    extracted = extract_markdown("{{a.md}}", include_resolver=resolver)
    assert len(calls) <= 3
    assert "text of a.md" in all_text(extracted) and "text of b.md" in all_text(extracted)


def test_markdown_include_depth_is_limited() -> None:
    calls: list[str] = []

    def resolver(path: str) -> str:
        calls.append(path)
        n = int(path.split("/")[1].split(".")[0])
        return f"level {n}\n\n{{{{f/{n + 1}.md}}}}"

    extracted = extract_markdown("{{f/1.md}}", include_resolver=resolver)
    assert calls == ["f/1.md", "f/2.md", "f/3.md"]
    assert "level 3" in all_text(extracted) and "{{" not in all_text(extracted)


def test_markdown_template_tags_outside_includes() -> None:
    text = (
        "# Page\n\n{{tab}}\n\nUse version {{var.milvus_release_version}} here.\n\n"
        "```yaml\nimage: {{var.tag}}\n{{fragments/not_included.md}}\n{{ .Values.x }}\n```\n"
    )
    calls: list[str] = []

    def resolver(target: str) -> str:
        calls.append(target)
        return "SHOULD NOT APPEAR"

    extracted = extract_markdown(text, include_resolver=resolver)
    body = section(extracted, "Page").text
    assert calls == []
    assert "{{tab}}" not in body
    assert "Use version {{var.milvus_release_version}} here." in body
    assert "image: {{var.tag}}\n{{fragments/not_included.md}}\n{{ .Values.x }}" in body


def test_markdown_resolver_errors_cost_only_the_include() -> None:
    def broken(path: str) -> str:
        raise OSError("disk on fire")

    extracted = extract_markdown("# T\n\nbefore\n\n{{x/y.md}}\n\nafter", include_resolver=broken)
    assert section(extracted, "T").text == "before\n\nafter"


def test_markdown_unclosed_fence_does_not_swallow_the_page() -> None:
    extracted = extract_markdown("# A\n\n```python:\n\ncode\n\n## B\n\nb text")
    assert section(extracted, "A", "B").text == "b text"


def test_markdown_html_is_reduced_to_text() -> None:
    text = """# Page

<!-- a comment -->
Kept <!-- inline comment --> text.

<!--
## Commented-out heading
-->

<div class="alert note">
Currently, a vector field only supports one index type.<br/>Second line.
</div>

<div class="multipleCode">
  <a href="#python">Python </a>
  <a href="#java">Java</a>
</div>

See <a href="https://x.org">the site</a> and [docs](other.md#x) or <https://milvus.io>.
Replace `<div>` and <your_token> in List<String>.

<table>
<thead><tr><th>Parameter</th><th>Description</th></tr></thead>
<tbody><tr><td><code>nlist</code></td><td>Number of <a href="#x">cluster</a> units</td></tr></tbody>
</table>

| md | table<br/>cell |
|----|-------|
| a  | b     |



Last &amp; final.
"""
    extracted = extract_markdown(text)
    assert [s.headings for s in extracted.sections] == [("Page",)]
    body = extracted.sections[0].text
    assert "comment" not in body
    assert "Kept  text." in body
    assert "Currently, a vector field only supports one index type.\nSecond line." in body
    assert "Python" not in body and "Java" not in body
    assert "See the site and docs or https://milvus.io." in body
    assert "Replace `<div>` and <your_token> in List<String>." in body
    assert "| Parameter | Description |\n|---|---|\n| `nlist` | Number of cluster units |" in body
    assert "| md | table cell |" in body
    assert "Last & final." in body
    assert "\n\n\n" not in body
    assert "<" not in body.replace("<div>", "").replace("<your_token>", "").replace("<String>", "")


def test_markdown_html_headings_split_sections() -> None:
    text = '# CLI\n\n## clear\n\nClears.\n\n<h3 id="clear-syntax">Syntax</h3>\n\n```shell\nclear\n```\n'
    extracted = extract_markdown(text)
    syntax = section(extracted, "CLI", "clear", "Syntax")
    assert syntax.anchor == "clear-syntax"
    assert syntax.text == "```shell\nclear\n```"


def test_markdown_pre_blocks_become_fences() -> None:
    text = "# T\n\n<pre>\nworkspace\n├── milvus-backup\n└── configs &amp; more\n</pre>\n\nAfter."
    body = section(extract_markdown(text), "T").text
    assert body == "```\nworkspace\n├── milvus-backup\n└── configs & more\n```\n\nAfter."


def test_markdown_heading_cleanup_and_duplicate_slugs() -> None:
    text = "# Title #\n\nx\n\n## `log.level`\n\ny\n\n## Options\n\na\n\n## Options\n\nb\n\n#hashtag is text\n"
    extracted = extract_markdown(text)
    assert [(s.headings[-1], s.anchor) for s in extracted.sections] == [
        ("Title", "title"),
        ("log.level", "loglevel"),
        ("Options", "options"),
        ("Options", "options-1"),
    ]
    assert extracted.sections[-1].text == "b\n\n#hashtag is text"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "---",
        "---\ntitle: x",
        "```",
        "<!--",
        "#",
        "# ",
        "{{a.md}}",
        "<pre>",
        "\x00",
        "\ufffd" * 50,
        "<table><tr><td>",
        "[unclosed](link",
        "\r\n# Windows\r\n\r\nline\r\n",
    ],
)
def test_markdown_odd_input_never_raises(text: str) -> None:
    extracted = extract_markdown(text, include_resolver=lambda p: None)
    assert extracted.title
    assert all(s.text.strip() for s in extracted.sections)


HOSTILE_MARKDOWN = {
    "unmatched-backticks": "` `` " * 50_000,  # unmatched single backticks inside one long paragraph
    "emphasis-heading": "# " + "*a " * 50_000,  # emphasis markers in a huge heading
    "unclosed-tags": "<div " * 50_000,
    "tables": "<table>" * 20_000,
    "comments": "<!--" * 50_000,
    "template": "{{" + " " * 100_000 + "x",
    "spaced-heading": "# a" + " " * 100_000 + "b",
}


@pytest.mark.parametrize("name", HOSTILE_MARKDOWN)
def test_markdown_hostile_input_is_extracted_whole(name: str) -> None:
    text = HOSTILE_MARKDOWN[name]
    extracted = extract_markdown(text)
    body = [s.text for s in extracted.sections]
    if name in ("unmatched-backticks", "unclosed-tags", "template"):
        assert body == [text.strip()], "the paragraph comes out exactly as written"
        assert extracted.title == FALLBACK_TITLE
    elif name in ("tables", "comments"):
        assert (extracted.title, body) == (FALLBACK_TITLE, [])
    elif name == "emphasis-heading":
        assert body == [] and 0 < len(extracted.title) < 1000
        assert extracted.title.startswith("*a *a") and set(extracted.title) <= set("*a ")
    else:  # the heading's whitespace collapses; nothing of it is cut off
        assert (extracted.title, body) == ("a b", [])


def test_markdown_crlf_and_bom() -> None:
    extracted = extract_markdown("\ufeff---\r\ntitle: Win\r\n---\r\n# Head\r\n\r\nline\r\n")
    assert extracted.title == "Win"
    assert section(extracted, "Head").text == "line"


def test_markdown_front_matter_is_real_yaml() -> None:
    """Plain multi-line scalars, escapes and TOML front matter, which the old hand-written scalar parser cut short."""
    assert extract_markdown("---\ntitle: A long\n  title continued\ntags: [a, b]\n---\nbody").title == (
        "A long title continued"
    )
    assert extract_markdown('---\ntitle: "caf\\u00e9 \\"bar\\""\n---\nbody').title == 'café "bar"'
    toml = extract_markdown('+++\ntitle = "From TOML"\ndate = 2024-01-01\n+++\n\nbody')
    assert (toml.title, all_text(toml)) == ("From TOML", "body")
    bad = extract_markdown("---\ntitle: {{ page.name }\nlayout: x\n---\n\n# Head\n\nbody")
    assert (bad.title, all_text(bad)) == ("Head", "body")


def test_markdown_fastapi_blocks_keep_text_and_drop_code_includes() -> None:
    text = (
        "# Types\n\n/// tip | Handy hint\n\nUse **type hints** everywhere.\n\n///\n\n"
        "{* ../../docs_src/python_types/tutorial001_py310.py hl[2] *}\n\n"
        "//// tab | Python 3.10+\n\n```Python\nx: int | None\n```\n\n////\n\n"
        "/// note\n\n    indented text is code inside a block\n\n///\n\nAfter.\n"
    )
    body = section(extract_markdown(text), "Types").text
    assert body == (
        "Handy hint\n\nUse type hints everywhere.\n\nPython 3.10+\n\n```Python\nx: int | None\n```\n\n"
        "```\nindented text is code inside a block\n```\n\nAfter."
    )


def test_markdown_mkdocs_admonitions_and_tabs_keep_text() -> None:
    text = (
        '# Models\n\n!!! note "Strict mode"\n    Strict mode is off by default.\n\n'
        '    ```py\n    Model(x=1)\n    ```\n\n??? api "API Documentation"\n    [`BaseModel`][pydantic.BaseModel]\n\n'
        '=== "Pydantic v2"\n\n    ```py\n    m.model_dump()\n    ```\n\n=== "Pydantic v1"\n\n    Use `m.dict()`.\n\n'
        "!!! warning\n    No title here.\n\nOutside.\n"
    )
    body = section(extract_markdown(text), "Models").text
    assert body == (
        "Strict mode\n\nStrict mode is off by default.\n\n```py\nModel(x=1)\n```\n\nAPI Documentation\n\n"
        "`BaseModel`\n\nPydantic v2\n\n```py\nm.model_dump()\n```\n\nPydantic v1\n\n"
        "Use `m.dict()`.\n\nNo title here.\n\nOutside."
    )


def test_markdown_lists_tables_and_quotes_render_as_markdown() -> None:
    text = (
        "# L\n\n- First *item*\n- Second\n  1. one\n  2. two\n\n     more of two\n\n"
        "3) three\n4) four\n\n> Quoted **text**\n> continues.\n\n"
        "| Name | Default |\n|:-----|--------:|\n| `a\\|b` | [x](y.md) |\n"
    )
    body = section(extract_markdown(text), "L").text
    assert body == (
        "- First item\n- Second\n  1. one\n  2. two\n     more of two\n\n3. three\n4. four\n\n"
        "Quoted text\ncontinues.\n\n| Name | Default |\n|---|---|\n| `a\\|b` | x |"
    )


def test_markdown_heading_anchor_from_html_a_name() -> None:
    text = '# T\n\n## <a name="custom"></a>Named heading\n\nx\n\n## Setext heading\n\ny\n\nOther\n-----\n\nz\n'
    extracted = extract_markdown(text)
    assert [(s.headings[-1], s.anchor) for s in extracted.sections] == [
        ("Named heading", "custom"),
        ("Setext heading", "setext-heading"),
        ("Other", "other"),
    ]


def test_markdown_unclosed_openers_do_not_swallow_the_page() -> None:
    text = "# A\n\n<pre>never closed\n\n## B\n\nb text\n\n<!-- stray\ncomment\n\n## C\n\n~~~~ stray\n\n## D\n\nd text"
    extracted = extract_markdown(text)
    assert section(extracted, "A", "B").text == "b text"
    assert section(extracted, "A", "D").text.endswith("d text")
    assert "stray" not in section(extracted, "A", "B").text


@pytest.mark.parametrize(
    "text",
    [
        "> " * 5_000 + "deep",
        "- " * 5_000 + "deep",
        "1. " * 3_000 + "deep",
        "!!! note\n" + "".join("    " * i + "!!! note\n" for i in range(1, 300)),
        "/// a\n" * 2_000 + "///\n" * 2_000,
        "```\n" * 5_001,
        "[" * 20_000 + "x" + "](y)" * 20_000,
    ],
)
def test_markdown_deep_nesting_never_raises(text: str) -> None:
    extracted = extract_markdown(text)
    assert extracted.title
    assert all(s.text.strip() for s in extracted.sections)


# --------------------------------------------------------------------------- real corpus


@pytest.mark.skipif(not MILVUS_DOCS.is_dir(), reason="milvus docs corpus not available")
def test_real_milvus_docs() -> None:
    def resolver(include: str) -> str | None:
        target = (MILVUS_DOCS / include).resolve()
        return target.read_text("utf-8", errors="replace") if target.is_file() else None

    def extract(relative: str) -> Extracted:
        text = (MILVUS_DOCS / relative).read_text("utf-8", errors="replace")
        return extract_markdown(text, path_hint=relative, include_resolver=resolver)

    index = extract("reference/index.md")
    assert index.title == "In-memory Index"
    paths = [s.headings for s in index.sections]
    assert ("In-memory Index", "ANNS vector indexes") in paths
    assert ("In-memory Index", "Indexes supported in Milvus", "HNSW") in paths
    flat = section(index, "In-memory Index", "Indexes supported in Milvus")
    assert "<div" not in flat.text
    assert "| FLAT | N/A | Relatively small dataset; Requires a 100% recall rate |" in all_text(index)

    balance = extract("userGuide/load_balance.md")
    assert balance.title == "Balance Query Load"
    check = section(balance, "Balance Query Load", "Check segment information")
    assert "{{" not in check.text and "multipleCode" not in check.text
    assert 'utility.get_query_segment_info("book")' in check.text

    operator = extract("getstarted/standalone/install_standalone-operator.md")
    assert any(s.headings[-1:] == ("1. Install minikube",) for s in operator.sections)

    log = extract("reference/sys_config/configure_log.md")
    assert log.title == "log-related Configurations"
    assert section(log, "log-related Configurations", "log.level").anchor == "loglevel"

    files = sorted(MILVUS_DOCS.rglob("*.md"))
    assert files
    for path in files:
        relative = path.relative_to(MILVUS_DOCS).as_posix()
        extracted = extract(relative)
        assert extracted.title, relative
        for s in extracted.sections:
            assert s.text.strip(), relative
            assert "{{fragments/" not in s.text, relative
            assert "<!--" not in s.text.replace("```", ""), relative
