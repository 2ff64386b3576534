"""The site's source folder: executed notebooks prepared for reading, the repo's markdown, the home page.

It keeps the repo's layout (notebooks/, runbooks/, adr/, patterns/, docs/) so relative links written in the
repo resolve the same way in the site. Generated under build/, never committed.
"""
from __future__ import annotations

import posixpath
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import home, links
from .run_record import RunRecord
from ..series.notebook_files import series, strip_volatile

HEADING = re.compile(r"^#\s+(.+?)\s*$", re.MULTILINE)
TITLES = {"notebooks": "The notebooks", "runbooks": "Runbooks", "adr": "Decisions (ADRs)", "patterns": "Patterns",
          "docs": "Docs"}  # of the site's folders, for their index pages and the navigation


@dataclass
class Staged:
    """What the site holds, as repo-relative source paths with their titles, for the navigation."""

    notebooks: list[tuple[str, str]]  # the folder's index first, then the series in order
    sections: dict[str, list[tuple[str, str]]]  # folder -> pages, its index first


def title_of(markdown: str, fallback: str) -> str:
    match = HEADING.search(markdown)
    return match.group(1).replace("`", "") if match else fallback


def _markdown_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.md")) if folder.is_dir() else []


def _copy_section(source: Path, dest: Path) -> list[str]:
    """Copy a folder of markdown (and the images it shows); return the markdown pages, repo-relative."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return [f"{source.name}/{p.relative_to(source).as_posix()}" for p in _markdown_files(source)]


def _section_index(folder: str, pages: list[tuple[str, str]]) -> str:
    entries = [f"- [{title}]({posixpath.relpath(path, folder)})" for path, title in pages]
    return "\n".join([f"# {TITLES.get(folder, folder)}", "", *entries, ""])


def _notebook_for_site(source: Path, page: str, pages: set[str], committed: bool) -> tuple[nbformat.NotebookNode, str]:
    """A copy without papermill's noise, links pointed at site pages, and a line linking what it mentions
    (and one saying so when the outputs are the committed ones rather than this run's)."""
    nb = strip_volatile(nbformat.read(str(source), as_version=4))
    texts = [cell.source for cell in nb.cells]
    texts += [str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
              for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    related = links.mentioned_pages(texts, pages)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = links.rewrite_markdown(cell.source, pages, page)
        for out in cell.get("outputs", []):  # Markdown displayed by code (IPython.display.Markdown) too
            if "text/markdown" in out.get("data", {}):
                out.data["text/markdown"] = links.rewrite_markdown(out.data["text/markdown"], pages, page)
    if related:
        listed = " · ".join(f"[{p}]({posixpath.relpath(links.html_name(p), 'notebooks')})" for p in related)
        nb.cells.insert(1 if nb.cells else 0, nbformat.v4.new_markdown_cell(f"*Runbooks and decisions this notebook "
                                                                           f"points to:* {listed}"))
    if committed:
        nb.cells.insert(1 if nb.cells else 0, nbformat.v4.new_markdown_cell(  # HTML: nbconvert has no admonitions
            '<div class="admonition note"><p class="admonition-title">Not executed in this run</p>'
            "<p>The outputs below are the ones committed in the repo.</p></div>"))
    first_markdown = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    return nb, title_of(first_markdown, source.stem)


def stage(executed: Path, docs: Path, record: RunRecord | None, repo: Path, committed: Iterable[Path] = ()) -> Staged:
    """Fill `docs` (emptied first) from the executed notebooks in `executed` and the markdown folders of `repo`.

    A notebook of `committed` (the repo's series) that `executed` lacks is shown with its committed outputs,
    so a partial run (--only, --from, a failure) still gives a whole series to read and no link to a gap.
    """
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    sections: dict[str, list[tuple[str, str]]] = {}
    for name in links.SECTIONS:
        if not (repo / name).is_dir():
            continue
        files = _copy_section(repo / name, docs / name)
        has_index = any(posixpath.basename(f) in ("README.md", "index.md") for f in files)
        pages = [(f, title_of((docs / f).read_text(encoding="utf-8"), posixpath.basename(f))) for f in files]
        if not has_index:
            (docs / name / "index.md").write_text(_section_index(name, pages), encoding="utf-8")
            pages.insert(0, (f"{name}/index.md", TITLES.get(name, name)))
        pages.sort(key=lambda p: posixpath.basename(p[0]) not in ("README.md", "index.md"))  # index first
        sections[name] = pages
    ran = {book.name: book for book in series(folder=executed)}
    kept = {book.name: book for book in committed if book.name not in ran}
    books = sorted([*ran.values(), *kept.values()], key=lambda book: book.name)
    every_page = {p for pages in sections.values() for p, _ in pages} | {f"notebooks/{b.name}" for b in books}
    (docs / "notebooks").mkdir()
    notebooks = []
    for book in books:
        page = f"notebooks/{book.name}"
        nb, title = _notebook_for_site(book, page, every_page, committed=book.name in kept)
        nbformat.write(nb, str(docs / page))
        notebooks.append((page, title))
    (docs / "notebooks" / "index.md").write_text(_section_index("notebooks", notebooks), encoding="utf-8")
    notebooks.insert(0, ("notebooks/index.md", TITLES["notebooks"]))
    folders = {name: [p for p, _ in pages] for name, pages in sections.items()}
    (docs / "index.md").write_text(home.render([b.name for b in books], record, folders), encoding="utf-8")
    return Staged(notebooks=notebooks, sections=sections)
