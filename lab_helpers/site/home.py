"""The home page: the mastery checklist and the validation criteria, each with what this run says about it."""
from __future__ import annotations

import posixpath
from collections.abc import Iterable

from . import links
from .checklist import MASTERY, VALIDATION, Criterion
from .run_record import NotebookResult, RunRecord

NOT_WRITTEN = "not written yet"


def _notebook(number: str, notebooks: Iterable[str]) -> str | None:
    return next((n for n in notebooks if n.startswith(number + "_")), None)


def _link(notebook: str) -> str:
    return f"[{posixpath.splitext(notebook)[0]}](notebooks/{notebook})"


def _ran(result: NotebookResult | None, record: RunRecord | None) -> str:
    if record is None:
        return "committed outputs (not run in this build)"
    if result is None:
        return "not run"
    if result.status == "ok":
        return "✓ executed without error"
    return f"✗ failed: {result.error}".replace("|", "\\|").replace("\n", " ")


def _checkpoints(result: NotebookResult | None, record: RunRecord | None) -> str:
    if record is None or result is None or result.checkpoints is None:
        return "—"
    checks = result.checkpoints
    if checks.compared == 0:
        return "no committed checkpoint outputs"
    if record.mode == "refresh":
        verdict = "matched the previous commit" if checks.match else f"{len(checks.differing)} changed"
        return f"{verdict}; written back (refresh)"
    if checks.match:
        return f"✓ {checks.compared} of {checks.compared} match"
    return f"✗ {len(checks.differing)} of {checks.compared} differ"


def _proved(result: NotebookResult | None) -> bool:
    return result is not None and result.status == "ok" and (result.checkpoints is None or result.checkpoints.match)


def _status_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _notebook_cells(notebook: str | None, record: RunRecord | None) -> list[str]:
    if notebook is None:
        return [NOT_WRITTEN, "", "", "", ""]
    result = record.result_for(notebook) if record else None
    seconds = f"{result.seconds:.0f} s" if result else "—"
    target = record.target if record and result else "—"
    return [_link(notebook), _ran(result, record), seconds, _checkpoints(result, record), target]


def _criterion_status(criterion: Criterion, notebooks: list[str], record: RunRecord | None,
                      folders: dict[str, list[str]]) -> tuple[str, str]:
    """(evidence links, verdict) for one validation criterion."""
    if criterion.pages:
        every_page = [p for pages in folders.values() for p in pages]
        found = {wanted: links.resolve(wanted, every_page) for wanted in criterion.pages}
        evidence = ", ".join(f"[{posixpath.splitext(posixpath.basename(page))[0]}]({page})"
                             for page in found.values() if page)
        missing = [wanted for wanted, page in found.items() if page is None]
        return evidence or "—", f"✗ missing: {', '.join(missing)}" if missing else "✓"
    if not criterion.notebooks and record is None:
        return "[the checklist](#mastery-checklist)", "committed outputs"
    if not criterion.notebooks:  # every mastery item
        proofs = [_notebook(item.notebooks[0], notebooks) for item in MASTERY]
        proved = sum(1 for n in proofs if n and record and _proved(record.result_for(n)))
        return "[the checklist](#mastery-checklist)", f"{proved} of {len(MASTERY)} proved by this run"
    found = [_notebook(n, notebooks) for n in criterion.notebooks]
    if None in found:
        return NOT_WRITTEN, "—"
    if record is None:
        return ", ".join(map(_link, found)), "committed outputs"
    results = [record.result_for(n) for n in found]
    if all(map(_proved, results)):
        verdict = "✓"
    elif any(r is not None and not _proved(r) for r in results):
        verdict = "✗ see the notebook's row"
    else:
        verdict = "not run"
    return ", ".join(map(_link, found)), verdict


def render(notebooks: list[str], record: RunRecord | None, folders: dict[str, list[str]]) -> str:
    """Markdown of the home page.

    `notebooks` are the notebook file names in the site; `folders` each folder's pages, its index first.
    """
    lines = ["---", "hide: [toc]", "---", "", "# Serving Lab — portfolio", ""]  # the tables get the width
    if record is None:
        lines += ["Rendered from the notebooks' committed outputs: no run record beside them, so no run status.", ""]
    else:
        results = [r for r in record.notebooks if r.notebook in notebooks]
        ok = sum(r.status == "ok" for r in results)
        lines += [f"One {'refresh' if record.mode == 'refresh' else 'run'} of the series on the "
                  f"**{record.target}** target: {ok} of {len(results)} notebooks executed without error in "
                  f"{sum(r.seconds for r in results):.0f} s.", ""]
    lines += ["Each item of the phase's checklist links to the notebook that proves it. *Checkpoints* compares "
              "the cells tagged `nbval-check-output` with the committed outputs, sanitized as `make test` does.", "",
              "## Mastery checklist", "",
              "| # | mastery item | proved by | this run | time | checkpoints | target |",
              "|---|---|---|---|---|---|---|"]
    for number, item in enumerate(MASTERY, 1):
        cells = _notebook_cells(_notebook(item.notebooks[0], notebooks), record)
        helpers = [_link(n) for n in (_notebook(m, notebooks) for m in item.notebooks[1:]) if n]
        if helpers and cells[0] != NOT_WRITTEN:
            cells[0] += " (with " + ", ".join(helpers) + ")"
        lines.append(_status_row([str(number), item.text, *cells]))
    lines += ["", "## Validation criteria", "", "| criterion | evidence | status |", "|---|---|---|"]
    for criterion in VALIDATION:
        lines.append(_status_row([criterion.text, *_criterion_status(criterion, notebooks, record, folders)]))
    named = {item.notebooks[0] for item in MASTERY} | {n for c in VALIDATION for n in c.notebooks}
    more = [n for n in notebooks if n[:2] not in named]
    if more:
        lines += ["", "## The rest of the series", "", "| notebook | this run | time | checkpoints | target |",
                  "|---|---|---|---|---|"]
        lines += [_status_row(_notebook_cells(n, record)) for n in more]
    return "\n".join(lines) + "\n"
