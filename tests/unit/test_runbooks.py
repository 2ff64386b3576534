"""Every runbook an error points to exists, every diagnosis names one, and the index covers them all."""
import ast
import re
from pathlib import Path

from lab_helpers.diagnosis import DEFAULT_RUNBOOK, FRAMEWORK_LOAD_RUNBOOK, RUNBOOKS, diagnose, diagnosed_reasons
from lab_helpers.paths import REPO_ROOT


def _strings_outside_docstrings(tree: ast.AST) -> list[str]:
    """String constants a program can print: every one but the docstrings (which may name example paths)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_every_runbook_referenced_in_code_exists():
    referenced = set(RUNBOOKS.values()) | {DEFAULT_RUNBOOK}
    for source in (REPO_ROOT / "lab_helpers").rglob("*.py"):
        for text in _strings_outside_docstrings(ast.parse(source.read_text())):
            referenced |= set(re.findall(r"runbooks/[a-z0-9-]+\.md", text))
    assert "runbooks/caller-denied.md" in referenced  # named by lab_helpers/policy/rules.py: the scan reads code
    missing = sorted(p for p in referenced if not (REPO_ROOT / p).is_file())
    assert not missing, f"runbooks named in lab_helpers but missing: {missing}"


def test_diagnosis_prefers_model_status_and_picks_the_oom_runbook():
    isvc = {"kind": "InferenceService", "metadata": {"name": "iris", "namespace": "lab"},
            "status": {"conditions": [{"type": "PredictorReady", "status": "False", "reason": "MinimumReplicasUnavailable"}],
                       "modelStatus": {"lastFailureInfo": {"reason": "ModelLoadFailed", "message": "OOMKilled: x",
                                                           "exitCode": 137}}}}
    events = [{"type": "Warning", "reason": f"R{i}", "message": "m", "involvedObject": {"kind": "Pod", "name": "p"}}
              for i in range(8)]
    d = diagnose(isvc, events)
    assert (d.reason, d.runbook) == ("ModelLoadFailed", "runbooks/oom-killed.md")
    assert [e["reason"] for e in d.events] == ["R3", "R4", "R5", "R6", "R7"]
    text = str(d)
    assert "InferenceService lab/iris is not Ready: ModelLoadFailed" in text and "runbook: runbooks/oom-killed.md" in text


def test_diagnosis_falls_back_to_the_first_false_condition():
    obj = {"kind": "HelmRelease", "metadata": {"name": "kserve-crd"},
           "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "DependencyNotReady",
                                      "message": "dependency 'kserve/cert-manager' is not ready"}]}}
    d = diagnose(obj, [])
    assert (d.reason, d.runbook) == ("DependencyNotReady", "runbooks/install-not-ready.md")
    assert diagnose({"kind": "X", "metadata": {"name": "y"}}, []).reason == "NotReady"


def test_a_scaled_object_that_fails_its_check_points_to_the_scale_to_zero_runbook():
    so = {"kind": "ScaledObject", "metadata": {"name": "iris-s2z", "namespace": "lab"},
          "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
                                     "message": "ScaledObject doesn't have correct scaleTargetRef specification"}]}}
    d = diagnose(so, [])
    assert (d.reason, d.runbook) == ("ScaledObjectCheckFailed", "runbooks/scale-to-zero-failing.md")


# --- the index: every reason the code can emit maps to a runbook listed there, every runbook is linked ---

RUNBOOK_DIR = REPO_ROOT / "runbooks"
INDEX = RUNBOOK_DIR / "README.md"
SECTIONS = ("## You see", "## Confirm", "## Causes and fixes")
# Reasons the scan finds that describe the healthy state of a condition whose False is normal (Fallback,
# Paused, ScalingLimited): a diagnosis never surfaces them as a failure.
STATUSES = {"True", "False", "Unknown"}
HEALTHY_STATES = {"NoFallbackFound", "ScaledObjectUnpaused", "DesiredWithinRange", "TooFewReplicas", "TooManyReplicas"}


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value else None


def _failure_branches(status: ast.AST, reason: ast.AST) -> list[ast.AST]:
    """The reason expressions that go with a status other than True: for ``"A" if ok else "B"`` with status
    ``ok`` only B, with status ``not ok`` only A; both when the two are not tied by one expression."""
    if not isinstance(reason, ast.IfExp):
        return [reason]
    same, negated = ast.dump(status) == ast.dump(reason.test), False
    for outer, inner in ((status, reason.test), (reason.test, status)):
        if isinstance(outer, ast.UnaryOp) and isinstance(outer.op, ast.Not) and ast.dump(outer.operand) == ast.dump(inner):
            negated = True
    if same:
        return _failure_branches(status, reason.orelse)
    if negated:
        return [reason.body]
    return [reason.body, *_failure_branches(status, reason.orelse)]


def _leaves(node: ast.AST) -> list[ast.AST]:
    return [*_leaves(node.body), *_leaves(node.orelse)] if isinstance(node, ast.IfExp) else [node]


def _reasons_in(tree: ast.AST) -> set[str]:
    """Failure reasons written as literals: ``RuntimeProblem("X", …)``, ``condition(type, status, "X", …)`` with a
    status that can be False, KEDA's ``Condition("False"|"Unknown", "X", …)``, ``{"reason": "X"}`` in a status
    not True, ``return "X", message`` from a controller's check, and ``x = "A" if … else "B"`` of reasons."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args = node.args
            if name == "RuntimeProblem" and args:
                found.append(args[0])
            elif name == "condition" and len(args) >= 3 and not (isinstance(args[1], ast.Constant) and args[1].value is True):
                found += [leaf for branch in _failure_branches(args[1], args[2]) for leaf in _leaves(branch)]
            elif name == "Condition" and len(args) >= 2 and _literal(args[0]) in ("False", "Unknown"):
                found.append(args[1])
        elif isinstance(node, ast.Dict):
            fields = {_literal(k): v for k, v in zip(node.keys, node.values) if k is not None}
            if "reason" in fields and ("status" not in fields or _literal(fields["status"]) != "True"):
                found.append(fields["reason"])
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
            first = _literal(node.value.elts[0])
            if first and first.isidentifier() and first[0].isupper():
                found.append(node.value.elts[0])
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.IfExp):
            leaves = [_literal(leaf) for leaf in _leaves(node.value)]
            if all(leaf and leaf.isidentifier() and leaf[0].isupper() and leaf not in STATUSES for leaf in leaves):
                found += _leaves(node.value)
    return {text for text in map(_literal, found) if text}


def emitted_reasons() -> set[str]:
    """Every status reason a diagnosis can surface: the ones the diagnosis says it carries, and the literal
    reasons the local controllers, kubelet and router write into status (not the API server's error replies,
    which are no object's status)."""
    reasons = set(diagnosed_reasons())
    local = REPO_ROOT / "lab_helpers" / "local"
    for source in [*sorted((local / "controllers").glob("*.py")), local / "kubelet.py", local / "routing.py"]:
        reasons |= _reasons_in(ast.parse(source.read_text()))
    return reasons - HEALTHY_STATES


def index_reasons() -> dict[str, str]:
    """The index's "By status reason" table: reason -> runbook path relative to the repo root."""
    text = INDEX.read_text().split("## By status reason", 1)[1]
    rows = re.findall(r"^\| `([^`]+)` \|.*\]\(([a-z0-9-]+\.md)\) \|$", text, flags=re.M)
    return {reason: f"runbooks/{page}" for reason, page in rows}


def test_the_scan_finds_the_reasons_each_controller_writes():
    reasons = emitted_reasons()
    for expected in ("ModelLoadFailed", "RuntimeUnhealthy", "NoSupportingRuntime", "InvalidPredictorSpec",
                     "CrashLoopBackOff", "DependencyNotReady", "SourceNotReady", "BackoffLimitExceeded",
                     "ScaledObjectCheckFailed", "TriggerError", "ScalerNotActive", "MinimumReplicasUnavailable"):
        assert expected in reasons
    assert not {"MinimumReplicasAvailable", "Accepted", "ResolvedRefs", "ScaledObjectReady"} & reasons


def test_every_emitted_reason_is_in_the_index_with_the_runbook_its_diagnosis_names():
    listed = index_reasons()
    missing = sorted(emitted_reasons() - set(listed))
    assert not missing, f"reasons the code can emit but runbooks/README.md does not list: {missing}"
    for reason, page in listed.items():
        obj = {"kind": "X", "metadata": {"name": "x"},
               "status": {"conditions": [{"type": "Ready", "status": "False", "reason": reason}]}}
        assert diagnose(obj, []).runbook == page, f"{reason}: the index says {page}, the diagnosis another page"
        assert (REPO_ROOT / page).is_file()


def test_every_runbook_is_linked_from_the_index():
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)\)", INDEX.read_text()))
    pages = {p.name for p in RUNBOOK_DIR.glob("*.md")} - {"README.md"}
    assert pages - linked == set(), f"runbooks the index does not link: {sorted(pages - linked)}"
    assert linked - pages == set(), f"the index links runbooks that do not exist: {sorted(linked - pages)}"


def test_every_runbook_has_the_three_sections_in_order():
    for page in sorted(RUNBOOK_DIR.glob("*.md")):
        if page.name == "README.md":
            continue
        headings = [line for line in page.read_text().splitlines() if line.startswith("## ")]
        present = [h for h in headings if h in SECTIONS]
        assert present == list(SECTIONS), f"{page.name}: sections {present}, want {list(SECTIONS)} in that order"


def test_the_specific_model_load_pages_are_in_the_index():
    text = INDEX.read_text()
    for special in (FRAMEWORK_LOAD_RUNBOOK, RUNBOOKS["OOMKilled"]):
        assert f"]({special.removeprefix('runbooks/')})" in text


# --- the commands a runbook tells you to run exist ---

def _runbook_text() -> str:
    return "\n".join(p.read_text() for p in sorted(RUNBOOK_DIR.glob("*.md")))


def test_every_lab_call_in_a_runbook_is_a_verb_of_the_lab():
    from lab_helpers.api import Lab
    from lab_helpers.prom.client import PromClient

    calls = set(re.findall(r"\blab\.([a-z_]+)(?:\.([a-z_]+))?\(", _runbook_text()))
    assert calls, "no lab.…( calls found: the pattern no longer matches the runbooks"
    unknown = sorted(f"lab.{verb}" + (f".{sub}" if sub else "") for verb, sub in calls
                     if not hasattr(Lab, verb) or (verb == "prom" and sub and not hasattr(PromClient, sub)))
    assert not unknown, f"runbooks call what the lab does not have: {unknown}"


def _defined_at_top(module: Path) -> set[str]:
    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_lab_helpers_name_in_a_runbook_exists():
    """Read from the source, not imported: importing the drift and bench modules costs seconds."""
    text = _runbook_text()
    names = set(re.findall(r"\blab_helpers(?:\.[a-z_]+)+", text))
    names |= {f"lab_helpers.{module}.{name.strip()}" for module, names_ in
              re.findall(r"from lab_helpers\.([a-z_.]+) import ([a-z_, ]+)", text) for name in names_.split(",")}
    assert names
    for dotted in sorted(names):
        parts, path = dotted.split("."), REPO_ROOT
        while parts and ((path / parts[0]).is_dir() or (path / f"{parts[0]}.py").is_file()):
            path = path / parts.pop(0)
        module = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        assert module.is_file(), f"runbooks name {dotted}: no module"
        assert len(parts) <= 1, f"runbooks name {dotted}: {module.relative_to(REPO_ROOT)} has no {parts[0]}"
        assert not parts or parts[0] in _defined_at_top(module), \
            f"runbooks name {dotted}: {module.relative_to(REPO_ROOT)} defines no {parts[0]}"


def test_every_cli_command_in_a_runbook_exists():
    from lab_helpers.cli import parser

    commands = set(re.findall(r"python -m lab_helpers ([a-z]+)", _runbook_text()))
    assert commands
    known = set(next(a for a in parser()._actions if a.dest == "command").choices)
    assert commands <= known, f"runbooks run commands the CLI does not have: {sorted(commands - known)}"
