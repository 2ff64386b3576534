"""Links in notebook markdown made to work in the site, and the runbooks/ADRs a notebook mentions linked from it.

mkdocs rewrites `.md` links only in markdown pages; a notebook page is rendered by nbconvert, so its links to
`../runbooks/x.md` or `05_cold_start.ipynb` must be pointed at the `.html` pages here. Notebooks also name files
in code spans (`runbooks/caller-denied.md`, `adr/0008`, `05_cold_start`): those become links when the page exists.
Paths are repo-relative ("runbooks/x.md"); the site keeps the repo's layout, notebooks under notebooks/.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

SECTIONS = ("runbooks", "adr", "patterns", "docs")
MARKDOWN_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
MENTION = re.compile(r"(?<![\[\w/])`((?:(?:runbooks|adr|patterns|docs)/[\w.-]+)|\d{2}_[a-z0-9_]+(?:\.ipynb)?)`(?!\])")
PATH_MENTION = re.compile(r"\b((?:runbooks|adr|patterns)/[\w-]+(?:\.md)?)")


def html_name(path: str) -> str:
    """The page a source file becomes: x.md / x.ipynb -> x.html, README.md -> index.html (mkdocs' rule)."""
    folder, name = posixpath.split(path)
    stem = "index" if name == "README.md" else posixpath.splitext(name)[0]
    return posixpath.join(folder, stem + ".html")


def resolve(mention: str, pages: Iterable[str]) -> str | None:
    """The page (repo-relative source path) a mention like "adr/0008" or "05_cold_start" names, if any."""
    mention = mention.removesuffix(".md").removesuffix(".ipynb")
    if "/" not in mention:
        mention = f"notebooks/{mention}"
    matches = sorted(p for p in pages if posixpath.splitext(p)[0] == mention
                     or (mention.startswith("adr/") and posixpath.basename(p).startswith(mention[4:] + "-")))
    return matches[0] if matches else None


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target)


def rewrite_markdown(text: str, pages: Iterable[str], page: str) -> str:
    """Notebook markdown for the site: relative .md/.ipynb links to .html, code-span mentions of pages linked."""
    pages = set(pages)
    here = posixpath.dirname(page)

    def link(match: re.Match) -> str:
        target = match.group(2)
        path, _, anchor = target.partition("#")
        if not is_relative(target) or not path.endswith((".md", ".ipynb", "/")):
            return match.group(0)
        page_name = path + "index.html" if path.endswith("/") else html_name(path)
        return f"{match.group(1)}{page_name}{'#' + anchor if anchor else ''}{match.group(3)}"

    def mention(match: re.Match) -> str:
        found = resolve(match.group(1), pages)
        if found is None or found == page:
            return match.group(0)
        return f"[{match.group(0)}]({posixpath.relpath(html_name(found), here)})"

    parts, last = [], 0
    for fence in FENCE.finditer(text):  # code blocks stay as they are
        parts.append(MENTION.sub(mention, MARKDOWN_LINK.sub(link, text[last:fence.start()])))
        parts.append(fence.group(0))
        last = fence.end()
    parts.append(MENTION.sub(mention, MARKDOWN_LINK.sub(link, text[last:])))
    return "".join(parts)


def mentioned_pages(texts: Iterable[str], pages: Iterable[str]) -> list[str]:
    """Runbooks, ADRs and patterns named anywhere in a notebook (markdown, code, outputs), in first-seen order."""
    pages = set(pages)
    seen: dict[str, None] = {}
    for text in texts:
        for match in PATH_MENTION.finditer(text):
            found = resolve(match.group(1), pages)
            if found is not None:
                seen.setdefault(found)
    return list(seen)
