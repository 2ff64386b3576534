"""mkdocs hooks: links to a folder reach its index page; notebook pages fetch nothing from a CDN (work offline).

In the repo a link to `../notebooks/` shows the folder (GitHub renders its README); in the site it must name
the folder's index page, or from disk the browser shows a file listing.

mkdocs-jupyter's template (nbconvert's lab template underneath) always emits a MathJax <script> pointing at a
CDN and a Mermaid loader that imports from one when a page has a diagram. The series has neither formulas nor
diagrams, so both are dropped: a formula would show as its TeX source, a diagram as its text.

mkdocs-jupyter builds a notebook page's table of contents with Python-Markdown's slugs, which drop a heading's
code spans, while the page's headings carry nbconvert's ids, which keep them: the sidebar's links to a heading
such as "From *name + alias* to `storageUri`" pointed nowhere. They are re-pointed at the ids the page has.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from lab_helpers.site.links import MARKDOWN_LINK, is_relative  # absolute: mkdocs loads hooks by file path

REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)
REMOTE_MODULE = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?import\(\s*\"https?://(?:(?!</script>).)*"
                           r"</script>", re.DOTALL)
HEADING_ID = re.compile(r"<h[1-6]\b[^>]*\bid=\"([^\"]+)\"", re.IGNORECASE)
MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->|<script type=\"text/x-mathjax-config\">.*?</script>", re.DOTALL)


def without_remote_scripts(html: str) -> str:
    for pattern in (REMOTE_SCRIPT, REMOTE_MODULE, MATHJAX_CONFIG):
        html = pattern.sub("", html)
    return html


def toc_to_heading_ids(toc: Iterable, html: str) -> None:
    """Give the table of contents' entries, in document order, the ids of the page's headings (same order)."""
    entries: list = []

    def flatten(items: Iterable) -> None:
        for item in items:
            entries.append(item)
            flatten(item.children)

    flatten(toc)
    ids = HEADING_ID.findall(html)
    if len(ids) != len(entries):  # not the same headings: leave it to the browser check to report
        return
    for entry, heading_id in zip(entries, ids):
        entry.id = heading_id


def folder_links_to_index(markdown: str, page: str, sources: set[str]) -> str:
    """`](../adr/)` -> `](../adr/index.md)` (or README.md), when that folder of the site has one."""
    here = posixpath.dirname(page)

    def link(match: re.Match) -> str:
        path, hash_, anchor = match.group(2).partition("#")
        if not path.endswith("/") or not is_relative(path):
            return match.group(0)
        folder = posixpath.normpath(posixpath.join(here, path))
        index = next((n for n in ("index.md", "README.md") if f"{folder}/{n}" in sources), None)
        return match.group(0) if index is None else f"{match.group(1)}{path}{index}{hash_}{anchor}{match.group(3)}"

    return MARKDOWN_LINK.sub(link, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # mkdocs' hook signatures
    return folder_links_to_index(markdown, page.file.src_uri, {f.src_uri for f in files})


def on_page_content(html: str, page, config, files) -> str:
    if page.file.src_uri.endswith(".ipynb") and page.toc:
        toc_to_heading_ids(page.toc, html)
    return html


def on_post_page(output: str, page, config) -> str:
    return without_remote_scripts(output)
