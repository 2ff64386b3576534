"""mkdocs hook: keep notebook pages self-contained (nothing fetched from a CDN, so they work offline).

mkdocs-jupyter's template (nbconvert's lab template underneath) always emits a MathJax <script> pointing at a
CDN and a Mermaid loader that imports from one when a page has a diagram. The series has neither formulas nor
diagrams, so both are dropped: a formula would show as its TeX source, a diagram as its text.
"""
from __future__ import annotations

import re

REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)
REMOTE_MODULE = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?import\(\s*\"https?://(?:(?!</script>).)*"
                           r"</script>", re.DOTALL)
MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->|<script type=\"text/x-mathjax-config\">.*?</script>", re.DOTALL)


def without_remote_scripts(html: str) -> str:
    for pattern in (REMOTE_SCRIPT, REMOTE_MODULE, MATHJAX_CONFIG):
        html = pattern.sub("", html)
    return html


def on_post_page(output: str, page, config) -> str:  # mkdocs' hook signature
    return without_remote_scripts(output)
