"""Build the static site with mkdocs (material theme, mkdocs-jupyter for notebooks): see adr/0011.

The mkdocs config is generated beside the staged sources under build/ (nothing generated is committed).
The site works from disk (file://) and from any static server: no directory URLs, no web fonts, search
through material's offline plugin, and notebook pages stripped of CDN scripts by `hooks`.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from . import hooks, run_record
from .staging import TITLES, Staged, stage
from ..paths import REPO_ROOT, build_dir
from ..series.notebook_files import series

SITE_NAME = "Serving Lab — portfolio"
STYLESHEET = Path(__file__).with_name("portfolio.css")


def _nav(staged: Staged) -> list:
    nav: list = [{"Home": "index.md"}, {TITLES["notebooks"]: [{title: page} for page, title in staged.notebooks]}]
    for folder, pages in staged.sections.items():
        nav.append({TITLES.get(folder, folder): [{title: page} for page, title in pages]})
    return nav


def mkdocs_config(staged: Staged, docs: Path, site: Path) -> dict:
    return {
        "site_name": SITE_NAME,
        "docs_dir": str(docs),
        "site_dir": str(site),
        "use_directory_urls": False,  # page.html rather than page/ so file:// browsing finds every page
        "theme": {"name": "material", "font": False,  # system fonts: no Google Fonts request
                  "features": ["navigation.footer", "navigation.sections", "navigation.indexes",
                               "content.code.copy"]},
        "plugins": ["search", "offline",  # offline: the search index as a script, usable from file://
                    {"mkdocs-jupyter": {"include_requirejs": False, "ignore_h1_titles": False,
                                        "include_source": False, "execute": False,
                                        # its cache of rendered notebooks (keyed by content) under build/,
                                        # not in the folder mkdocs happens to be started from
                                        "cache_dir": str(docs.parent / "notebook-cache")}}],
        "hooks": [hooks.__file__],
        "extra_css": [STYLESHEET.name],
        "markdown_extensions": ["admonition", "attr_list", "tables", {"toc": {"permalink": True}},
                                "pymdownx.highlight", "pymdownx.superfences"],
        "validation": {"omitted_files": "info", "absolute_links": "info", "unrecognized_links": "info",
                       "anchors": "info"},
        "nav": _nav(staged),
    }


class SiteBuildError(RuntimeError):
    pass


def build_site(executed: Path | None = None, site: Path | None = None, repo: Path = REPO_ROOT,
               work: Path | None = None) -> Path:
    """Render `executed` (default build/executed/) and the repo's markdown into `site` (default build/site/).

    Notebooks of the series missing from `executed` are shown with their committed outputs (see `stage`).
    """
    executed = executed or build_dir() / "executed"
    site = site or build_dir() / "site"
    work = work or site.parent / f"{site.name}-src"
    if not any(executed.glob("*.ipynb")):
        raise SiteBuildError(f"no executed notebooks in {executed}: run `make lab` (or `python -m lab_helpers run`)"
                             " first")
    staged = stage(executed, work / "docs", run_record.load(executed), repo, committed=series())
    shutil.copy(STYLESHEET, work / "docs" / STYLESHEET.name)
    config = work / "mkdocs.yml"
    config.write_text(yaml.safe_dump(mkdocs_config(staged, work / "docs", site), allow_unicode=True,
                                     sort_keys=False), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--clean", "--quiet", "-f", str(config)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SiteBuildError(f"mkdocs failed building {site}:\n{done.stderr.strip()}")
    return site / "index.html"


def main(check: bool = False, out=sys.stdout) -> int:
    """`python -m lab_helpers site [--check]`: rebuild build/site/ from build/executed/ alone, without re-running;
    with `check`, open every page in headless Chromium and save screenshots under build/screenshots/."""
    started = time.monotonic()
    try:
        index = build_site()
    except SiteBuildError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print(f"site built in {time.monotonic() - started:.1f} s: {index}", file=out)
    if not check:
        return 0
    from .browser_check import BrowserMissing, check_site

    started = time.monotonic()
    try:
        problems = check_site(index.parent, screenshots=build_dir() / "screenshots")
    except BrowserMissing as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"browser check: {len(problems)} problem(s) in {time.monotonic() - started:.1f} s; screenshots in "
          f"{build_dir() / 'screenshots'}", file=out)
    return 1 if problems else 0
