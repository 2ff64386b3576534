"""The portfolio site's pieces: checkpoint comparison, run record, links, the home page, staging, CDN stripping."""
from __future__ import annotations

import nbformat
import pytest

from lab_helpers.site import checkpoints, home, links, run_record, staging
from lab_helpers.site.checkpoints import CheckpointResult
from lab_helpers.site.hooks import folder_links_to_index, toc_to_heading_ids, without_remote_scripts
from lab_helpers.site.run_record import NotebookResult, RunRecord

CHECK = {"tags": ["nbval-check-output"]}


def _stream(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nbformat.write(nb, str(path))
    return path


def _code(cell_id, text, metadata=None, ran=True):
    cell = nbformat.v4.new_code_cell("print()", metadata=metadata or {}, id=cell_id,
                                     execution_count=1 if ran else None)
    cell.outputs = [_stream(text)] if text is not None else []
    return cell


def test_checkpoints_match_after_the_sanitize_rules_and_ignore_unchecked_cells(tmp_path):
    committed = _notebook(tmp_path / "a.ipynb", _code("c1", "ready in 3.2 s at 127.0.0.1:4000\n", CHECK),
                          _code("c2", "measured 17 rps\n"))
    executed = _notebook(tmp_path / "b.ipynb", _code("c1", "ready in 12 s at 127.0.0.1:51234\n", CHECK),
                         _code("c2", "measured 99 rps\n"))
    result = checkpoints.compare(executed, committed)
    assert (result.compared, result.match) == (1, True)


def test_a_changed_or_vanished_checkpoint_is_named_by_cell_id(tmp_path):
    committed = _notebook(tmp_path / "a.ipynb", _code("c1", "replicas: 0\n", CHECK), _code("c2", "ok\n", CHECK),
                          _code("c3", None, CHECK, ran=False))
    executed = _notebook(tmp_path / "b.ipynb", _code("c1", "replicas: 1\n", CHECK))
    result = checkpoints.compare(executed, committed)
    assert result.compared == 2 and result.differing == ["c1", "c2"] and not result.match


def test_a_comment_marker_overrides_the_tag_as_in_nbval(tmp_path):
    ignored = _code("c1", "a\n", CHECK)
    ignored.source = "# NBVAL_IGNORE_OUTPUT\nprint()"
    marked = _code("c2", "b\n")
    marked.source = "# NBVAL_CHECK_OUTPUT\nprint()"
    committed = _notebook(tmp_path / "a.ipynb", ignored, marked)
    executed = _notebook(tmp_path / "b.ipynb", _code("c1", "x\n"), _code("c2", "y\n"))
    assert checkpoints.compare(executed, committed).differing == ["c2"]


def test_the_sanitize_file_nbval_reads_is_the_one_used():
    rules = checkpoints.sanitizers()
    assert any(regex.sub(replace, "took 1.5 s") == "took <DURATION>" for regex, replace in rules)


def test_run_record_round_trips_and_a_rerun_replaces_its_notebook(tmp_path):
    record = RunRecord(target="local", mode="run")
    record.add(NotebookResult("01_b.ipynb", "failed", 3.0, error="cell 2: ValueError: x"))
    record.add(NotebookResult("00_a.ipynb", "ok", 1.5, checkpoints=CheckpointResult(2, [])))
    record.add(NotebookResult("01_b.ipynb", "ok", 2.0, checkpoints=CheckpointResult(1, ["c9"])))
    record.save(tmp_path)
    loaded = run_record.load(tmp_path)
    assert loaded == record
    assert [r.notebook for r in loaded.notebooks] == ["00_a.ipynb", "01_b.ipynb"]
    assert loaded.result_for("01_b.ipynb").checkpoints.differing == ["c9"]
    assert run_record.load(tmp_path / "elsewhere") is None


PAGES = {"runbooks/README.md", "runbooks/caller-denied.md", "adr/0008-network-policy-at-the-gateway-edge.md",
         "notebooks/05_cold_start.ipynb", "notebooks/10_network_policy.ipynb", "docs/benchmarks.md"}


@pytest.mark.parametrize("markdown, expected", [
    ("[r](../runbooks/caller-denied.md#fix)", "[r](../runbooks/caller-denied.html#fix)"),
    ("[all](../runbooks/README.md)", "[all](../runbooks/index.html)"),
    ("[next](05_cold_start.ipynb)", "[next](05_cold_start.html)"),
    ("[up](https://kserve.github.io/x.md)", "[up](https://kserve.github.io/x.md)"),
    ("[here](#2-the-trap)", "[here](#2-the-trap)"),
    ("[all runbooks](../runbooks/)", "[all runbooks](../runbooks/index.html)"),
    ("see `runbooks/caller-denied.md`", "see [`runbooks/caller-denied.md`](../runbooks/caller-denied.html)"),
    ("see `adr/0008`", "see [`adr/0008`](../adr/0008-network-policy-at-the-gateway-edge.html)"),
    ("measured in `05_cold_start`", "measured in [`05_cold_start`](05_cold_start.html)"),
    ("this is `10_network_policy`", "this is `10_network_policy`"),  # itself
    ("`runbooks/nothing.md` stays", "`runbooks/nothing.md` stays"),
    ("```\n`runbooks/caller-denied.md` [x](a.md)\n```", "```\n`runbooks/caller-denied.md` [x](a.md)\n```"),
])
def test_notebook_markdown_links_point_at_site_pages(markdown, expected):
    assert links.rewrite_markdown(markdown, PAGES, "notebooks/10_network_policy.ipynb") == expected


def test_runbooks_and_adrs_named_anywhere_are_found_once_in_order():
    texts = ["Diagnosis: see runbooks/caller-denied.md", "adr/0008 explains", "runbooks/caller-denied.md again",
             "runbooks/unknown.md"]
    assert links.mentioned_pages(texts, PAGES) == ["runbooks/caller-denied.md",
                                                  "adr/0008-network-policy-at-the-gateway-edge.md"]


FOLDERS = {"runbooks": ["runbooks/README.md", "runbooks/service-not-ready.md", "runbooks/scale-to-zero-failing.md",
                        "runbooks/canary-rollback-triggered.md", "runbooks/prediction-drift-alert.md",
                        "runbooks/runtime-not-loading-model.md"],
           "adr": ["adr/index.md", "adr/0007-flagger.md", "adr/0009-kserve-over-seldon.md"],
           "patterns": ["patterns/index.md"]}


def test_home_page_gives_each_item_its_notebook_and_this_runs_status():
    notebooks = ["00_model_registry.ipynb", "01_install_kserve.ipynb", "04_scale_to_zero.ipynb",
                 "14_inference_shapes.ipynb"]
    record = RunRecord("local", "run", [
        NotebookResult("01_install_kserve.ipynb", "ok", 12.4, checkpoints=CheckpointResult(3, [])),
        NotebookResult("04_scale_to_zero.ipynb", "ok", 40.0, checkpoints=CheckpointResult(4, ["x"])),
        NotebookResult("14_inference_shapes.ipynb", "failed", 5.0, error="cell 7: KeyError: 'a|b'")])
    page = home.render(notebooks, record, FOLDERS)
    cells = [line.strip("| ").split(" | ") for line in page.splitlines() if line.startswith("| ")]
    rows = {(c[1] if c[0].isdigit() else c[0]): " | ".join(c) for c in cells}  # by mastery item or criterion
    kserve = rows["KServe installed declaratively, by Flux from Helm charts"]
    assert "[01_install_kserve](notebooks/01_install_kserve.ipynb)" in kserve
    assert "✓ executed without error | 12 s | ✓ 3 of 3 match | local" in kserve
    assert "✗ 1 of 4 differ" in rows["Scale-to-zero for the InferenceService with a KEDA ScaledObject"]
    assert "not written yet" in rows["Flagger installed, with a canary policy on the InferenceService"]
    registry = rows["An InferenceService serving a model taken from the MLflow registry"]
    assert registry.endswith("not written yet") and "(with" not in registry  # 00 alone proves nothing here
    runbooks = next(row for text, row in rows.items() if text.startswith("Serving runbooks"))
    assert runbooks.endswith("[service-not-ready](runbooks/service-not-ready.md), "
                             "[scale-to-zero-failing](runbooks/scale-to-zero-failing.md), "
                             "[canary-rollback-triggered](runbooks/canary-rollback-triggered.md), "
                             "[prediction-drift-alert](runbooks/prediction-drift-alert.md), "
                             "[runtime-not-loading-model](runbooks/runtime-not-loading-model.md) | ✓")
    decisions = next(row for text, row in rows.items() if text.startswith("Decisions"))
    assert ("[0009-kserve-over-seldon](adr/0009-kserve-over-seldon.md), [0007-flagger](adr/0007-flagger.md) | "
            "✗ missing: adr/0010") in decisions
    assert rows["A weekly log"].endswith("— | ✗ missing: docs/weekly-log")
    assert "1 of 11 proved by this run" in rows["Every mastery item above proved by an executed notebook"]
    assert "✗ see the notebook's row" in rows["Scale-to-zero working"]
    rest = page.split("## The rest of the series")[1]  # notebooks no item names, discovered not listed
    assert "00_model_registry" in rest and "✗ failed: cell 7: KeyError: 'a\\|b'" in rest
    assert "2 of 3 notebooks executed without error in 57 s" in page


def test_a_criterion_whose_notebook_this_run_skipped_is_not_run_rather_than_failed():
    page = home.render(["02_deploy_inferenceservice.ipynb"], RunRecord("local", "run"), FOLDERS)
    assert "| KServe running with at least one InferenceService | [02_deploy_inferenceservice](" in page
    assert ".ipynb) | not run |" in page


def test_an_item_proved_with_a_second_notebook_links_both():
    page = home.render(["00_model_registry.ipynb", "02_deploy_inferenceservice.ipynb"], None, FOLDERS)
    assert ("[02_deploy_inferenceservice](notebooks/02_deploy_inferenceservice.ipynb) (with "
            "[00_model_registry](notebooks/00_model_registry.ipynb))") in page


def test_home_page_without_a_run_record_claims_no_status():
    page = home.render(["01_install_kserve.ipynb"], None, FOLDERS)
    assert "✓" not in page.split("## Validation criteria")[0] and "committed outputs (not run in this build)" in page


def test_cdn_scripts_are_stripped_and_local_ones_kept():
    html = ('<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=x"> </script>'
            '<script type="text/x-mathjax-config">init_mathjax();</script>'
            '<script type="module">\n const m = (await import("https://cdn.example/mermaid.mjs")).default;\n</script>'
            '<script src="../assets/javascripts/bundle.js"></script><script>local()</script>')
    kept = '<script src="../assets/javascripts/bundle.js"></script><script>local()</script>'
    assert without_remote_scripts(html) == kept


def test_markdown_links_to_a_folder_name_its_index_page():
    sources = {"notebooks/index.md", "runbooks/README.md", "adr/0001-x.md"}
    markdown = "[n](../notebooks/) [r](../runbooks/#top) [a](../adr/) [w](https://x.org/)"
    assert folder_links_to_index(markdown, "adr/0001-x.md", sources) == \
        "[n](../notebooks/index.md) [r](../runbooks/README.md#top) [a](../adr/) [w](https://x.org/)"


def test_staging_keeps_the_repo_layout_strips_papermill_and_links_what_a_notebook_mentions(tmp_path):
    repo, executed = tmp_path / "repo", tmp_path / "executed"
    (repo / "runbooks").mkdir(parents=True)
    (repo / "adr").mkdir()
    executed.mkdir()
    (repo / "runbooks" / "README.md").write_text("# Runbooks\n")
    (repo / "runbooks" / "caller-denied.md").write_text("# Caller denied\n")
    (repo / "adr" / "0008-edge.md").write_text("# ADR 0008 — Edge\n")
    injected = nbformat.v4.new_code_cell("target = 'local'", metadata={"tags": ["injected-parameters"]})
    error = nbformat.v4.new_code_cell("call()", outputs=[
        _stream("403: see runbooks/caller-denied.md\n"),
        nbformat.v4.new_output("display_data", data={"text/markdown": "[all](../runbooks/README.md)"})])
    _notebook(executed / "10_policy.ipynb", nbformat.v4.new_markdown_cell("# 10 · Policy\nas `adr/0008` says"),
              injected, error)
    staged = staging.stage(executed, tmp_path / "docs", None, repo)
    assert staged.notebooks == [("notebooks/index.md", "The notebooks"), ("notebooks/10_policy.ipynb", "10 · Policy")]
    assert staged.sections["adr"][0] == ("adr/index.md", "Decisions (ADRs)")  # generated: the folder had none
    assert staged.sections["runbooks"][0] == ("runbooks/README.md", "Runbooks")
    nb = nbformat.read(str(tmp_path / "docs" / "notebooks" / "10_policy.ipynb"), as_version=4)
    assert [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"] == [[]]
    assert "[`adr/0008`](../adr/0008-edge.html)" in nb.cells[0].source
    assert nb.cells[2].outputs[1].data["text/markdown"] == "[all](../runbooks/index.html)"
    assert nb.cells[1].source.endswith("[adr/0008-edge.md](../adr/0008-edge.html) · "  # sources, then outputs
                                       "[runbooks/caller-denied.md](../runbooks/caller-denied.html)")
    assert "[ADR 0008 — Edge](0008-edge.md)" in (tmp_path / "docs" / "adr" / "index.md").read_text()
    assert "Rendered from the notebooks' committed outputs" in (tmp_path / "docs" / "index.md").read_text()


def test_a_notebook_this_run_did_not_execute_is_shown_with_its_committed_outputs_and_says_so(tmp_path):
    executed, committed = tmp_path / "executed", tmp_path / "notebooks"
    executed.mkdir()
    committed.mkdir()
    for folder, name in ((executed, "01_b.ipynb"), (committed, "00_a.ipynb"), (committed, "01_b.ipynb")):
        _notebook(folder / name, nbformat.v4.new_markdown_cell(f"# {folder.name} {name}"))
    staged = staging.stage(executed, tmp_path / "docs", None, tmp_path / "repo",
                           committed=sorted(committed.glob("*.ipynb")))
    assert staged.notebooks[1:] == [("notebooks/00_a.ipynb", "notebooks 00_a.ipynb"),
                                    ("notebooks/01_b.ipynb", "executed 01_b.ipynb")]
    kept = nbformat.read(str(tmp_path / "docs" / "notebooks" / "00_a.ipynb"), as_version=4)
    assert "Not executed in this run" in kept.cells[1].source
    ran = nbformat.read(str(tmp_path / "docs" / "notebooks" / "01_b.ipynb"), as_version=4)
    assert len(ran.cells) == 1


def test_link_check_follows_only_links_into_the_site_and_knows_pages_folders_and_anchors(tmp_path):
    from lab_helpers.site.browser_check import _link_problem

    (tmp_path / "adr").mkdir()
    (tmp_path / "adr" / "index.html").write_text('<h2 id="options">x</h2>')
    base = tmp_path.as_uri() + "/"
    assert _link_problem(base + "adr/index.html#options", base, tmp_path) is None
    assert "a folder" in _link_problem(base + "adr/", base, tmp_path)  # from disk: a file listing
    assert _link_problem("http://127.0.0.1:8000/adr/", "http://127.0.0.1:8000/", tmp_path) is None  # served: index
    assert _link_problem("https://kserve.github.io/x", base, tmp_path) is None
    assert _link_problem(base + "adr/index.html#gone", base, tmp_path).endswith("no anchor #gone")
    assert _link_problem(base + "runbooks/x.html", base, tmp_path).endswith("no such page")


def test_building_without_executed_notebooks_says_what_to_run(tmp_path):
    from lab_helpers.site.build import SiteBuildError, build_site

    with pytest.raises(SiteBuildError, match=r"no executed notebooks in .*: run `make lab`"):
        build_site(executed=tmp_path, site=tmp_path / "site")


def test_the_table_of_contents_points_at_the_ids_the_headings_carry() -> None:
    """Python-Markdown's slug drops a heading's code span; nbconvert's id keeps it: the entry follows the page."""
    from mkdocs.structure.toc import AnchorLink

    title = AnchorLink("Registry", "registry", 1)
    section = AnchorLink("From name + alias to", "4-from-name-alias-to", 2)
    title.children.append(section)
    html = ('<h1 id="registry">Registry</h1><p>x</p>'
            '<h2 id="4-from-name-alias-to-storageuri">From <em>name + alias</em> to <code>storageUri</code></h2>')
    toc_to_heading_ids([title], html)
    assert (title.url, section.url) == ("#registry", "#4-from-name-alias-to-storageuri")
    other = AnchorLink("Only one", "only-one", 2)
    toc_to_heading_ids([other], html)   # not the same headings: left as it was
    assert other.url == "#only-one"
