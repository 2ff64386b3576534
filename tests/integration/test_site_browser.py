"""The portfolio site in a real browser (Debian's headless Chromium via selenium).

`make test` builds the site into a temp folder from the committed notebooks (which carry their outputs), so
the check needs no prior `make lab`; that build has no run record, so its home page claims no run status.
Screenshots of the home page and a notebook page land in build/screenshots/.
"""
from __future__ import annotations

import shutil

import pytest

from lab_helpers.paths import REPO_ROOT, build_dir, notebooks_dir
from lab_helpers.site.browser_check import check_page, check_site, chromium, served
from lab_helpers.site.build import build_site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("site")
    return build_site(executed=notebooks_dir(), site=work / "site").parent


def test_every_page_opens_clean_from_disk_and_over_http(site):
    shots = build_dir() / "screenshots"
    problems = check_site(site, screenshots=shots)
    assert not problems, "\n".join(map(str, problems))
    assert (shots / "home.png").stat().st_size > 0 and (shots / "notebook.png").stat().st_size > 0


def test_home_page_links_every_notebook_of_the_series_and_no_page_names_this_machine(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert str(REPO_ROOT) not in text and str(site) not in text, page
    for book in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        assert f'href="notebooks/{book.stem}.html"' in home
        assert (site / "notebooks" / f"{book.stem}.html").is_file()


def test_a_broken_link_a_missing_image_a_cdn_script_and_a_missing_title_are_caught(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    page = broken / "runbooks" / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "</article>", '<a href="no-such-page.html">x</a><a href="../index.html#no-such-anchor">y</a>'
                      '<img src="missing.png" alt="plot"></article>', 1), encoding="utf-8")
    cdn = broken / "adr" / "index.html"
    cdn.write_text(cdn.read_text(encoding="utf-8").replace(
        "</head>", '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script></head>', 1),
        encoding="utf-8")
    untitled = broken / "untitled.html"
    untitled.write_text("<html><head></head><body><p>no title here</p></body></html>", encoding="utf-8")
    with chromium() as driver, served(broken) as http_base:
        for base in (broken.as_uri() + "/", http_base):
            found = {(p.page, p.kind) for p in check_page(driver, base, "runbooks/index.html", broken)}
            assert {("runbooks/index.html", "broken link"), ("runbooks/index.html", "image not rendered"),
                    ("runbooks/index.html", "console error")} <= found, found  # the failed load of missing.png
            details = [p.detail for p in check_page(driver, base, "runbooks/index.html", broken)]
            assert any("no-such-page.html -> no such page" in d for d in details)
            assert any("no anchor #no-such-anchor" in d for d in details)
            kinds = {p.kind for p in check_page(driver, base, "adr/index.html", broken)}
            assert "request outside the site" in kinds
            assert "no title" in {p.kind for p in check_page(driver, base, "untitled.html", broken)}
