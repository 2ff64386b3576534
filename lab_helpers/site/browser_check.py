"""The site as a reader's browser sees it: headless Chromium (Debian's, driven by selenium) opens every page.

A page fails on a console error (failed resource loads included), a request leaving the site (a CDN), a link
to a page or anchor the site does not have, an image that did not render (natural width 0), or a missing
title (an empty <title> or no <h1>). Run from disk (file://) and through a local HTTP server, as readers will.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

SKIPPED_PAGES = ("404.html",)  # served by a web server for unknown URLs; its links are absolute on purpose
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "devtools:")
APT_COMMAND = "sudo apt-get install -y chromium chromium-driver"

PAGE_FACTS = """
return {
  title: document.title.trim(),
  h1: document.querySelectorAll('h1').length,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  broken_images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
                      .map(i => (i.getAttribute('src') || '(no src)').slice(0, 80)),
};
"""


@dataclass(frozen=True)
class Problem:
    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


class BrowserMissing(RuntimeError):
    pass


def site_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name not in SKIPPED_PAGES)


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator:
    """Headless Debian Chromium with its console and network logs on; no browser is downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_binary = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver_binary:
        raise BrowserMissing(f"headless Chromium and its driver are needed: run  {APT_COMMAND}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 "--allow-file-access-from-files"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_binary))
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def served(site: Path) -> Iterator[str]:
    """The site behind `python -m http.server`'s handler on a free loopback port; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@functools.lru_cache(maxsize=256)
def _anchors(page: Path, mtime: float) -> frozenset[str]:
    return frozenset(re.findall(r"\b(?:id|name)=\"([^\"]+)\"", page.read_text(encoding="utf-8", errors="replace")))


def _link_problem(href: str, base: str, site: Path) -> str | None:
    """Why an internal link is broken, or None (external links are not followed)."""
    url, fragment = urldefrag(href)
    if not url.startswith(base):
        return None
    target = site / unquote(urlsplit(url).path[len(urlsplit(base).path):])
    if target.is_dir():
        if base.startswith("file:"):
            return f"{href} -> a folder: from disk the browser lists its files, not its index page"
        target = target / "index.html"
    if not target.is_file():
        return f"{href} -> no such page"
    if fragment and target.suffix == ".html" and unquote(fragment) not in _anchors(target, target.stat().st_mtime):
        return f"{href} -> no anchor #{fragment}"
    return None


def _network_problems(entries: list[dict], base: str) -> list[tuple[str, str]]:
    problems = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(base) and not url.startswith(LOCAL_SCHEMES):
                problems.append(("request outside the site", url[:120]))
    return problems


def _settled(driver, seconds: float = 5) -> None:
    """Wait until the page has loaded and shows a heading (a loaded page can briefly read as empty under load)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    with contextlib.suppress(TimeoutException):  # a page without <h1> is reported by the caller
        WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: d.execute_script(
            "return document.readyState === 'complete' && document.querySelector('h1') !== null"))


def check_page(driver, base: str, page: str, site: Path) -> list[Problem]:
    driver.get(base + page)
    _settled(driver)
    facts = driver.execute_script(PAGE_FACTS)
    found = [Problem(page, "console error", e["message"][:300]) for e in driver.get_log("browser")
             if e["level"] == "SEVERE"]
    found += [Problem(page, kind, detail) for kind, detail in _network_problems(driver.get_log("performance"), base)]
    if not facts["title"] or not facts["h1"]:
        found.append(Problem(page, "no title", f"<title> {facts['title']!r}, {facts['h1']} <h1>"))
    found += [Problem(page, "image not rendered", src) for src in facts["broken_images"]]
    for href in dict.fromkeys(facts["links"]):
        why = _link_problem(href, base, site)
        if why:
            found.append(Problem(page, "broken link", why))
    return found


def check_site(site: Path, screenshots: Path | None = None) -> list[Problem]:
    """Every page of `site`, from disk and over HTTP; screenshots of the home page and the first notebook page."""
    site = site.resolve()
    pages = site_pages(site)
    if "index.html" not in pages:
        return [Problem("index.html", "missing", f"no home page in {site}")]
    problems: list[Problem] = []
    with chromium() as driver, served(site) as http_base:
        for base in (site.as_uri() + "/", http_base):
            for page in pages:
                problems += check_page(driver, base, page, site)
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            notebook = next((p for p in pages if p.startswith("notebooks/")), "index.html")
            for name, page in (("home", "index.html"), ("notebook", notebook)):
                driver.get(site.as_uri() + "/" + page)
                driver.save_screenshot(str(screenshots / f"{name}.png"))
    return problems
