"""The Prometheus process manager's file handling and port choice (starting the real binary is integration)."""
from __future__ import annotations

import json
import socket

import pytest
import yaml

from lab_helpers.errors import LabError
from lab_helpers.prom.process import PrometheusProcess, require_binary, stop_prometheus

CONFIG = {"global": {"scrape_interval": "2s"}, "scrape_configs": []}


def test_write_points_rule_files_at_its_rules_dir_and_reports_changes(tmp_path):
    process = PrometheusProcess(tmp_path)
    assert process.write(CONFIG, {"lab-a.yaml": "groups: []\n"}) is True
    written = yaml.safe_load(process.config_path.read_text())
    assert written["rule_files"] == [str(tmp_path / "rules" / "*.yaml")]
    assert (tmp_path / "rules" / "lab-a.yaml").read_text() == "groups: []\n"
    assert process.write(CONFIG, {"lab-a.yaml": "groups: []\n"}) is False  # nothing new: no reload needed


def test_write_removes_rule_files_of_deleted_rules(tmp_path):
    process = PrometheusProcess(tmp_path)
    process.write(CONFIG, {"lab-a.yaml": "groups: []\n", "lab-b.yaml": "groups: []\n"})
    assert process.write(CONFIG, {"lab-b.yaml": "groups: []\n"}) is True
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == ["lab-b.yaml"]


def test_the_port_is_chosen_once_and_kept_for_the_directory_while_it_is_free(tmp_path):
    first = PrometheusProcess(tmp_path)
    assert PrometheusProcess(tmp_path).port == first.port
    assert first.url == f"http://127.0.0.1:{first.port}"
    with socket.socket() as squatter:  # taken meanwhile: a new free port
        squatter.bind(("127.0.0.1", first.port))
        assert PrometheusProcess(tmp_path).port != first.port


def test_a_record_of_a_process_that_is_gone_is_not_adopted(tmp_path):
    (tmp_path / "process.json").write_text(json.dumps({"pid": 1, "createTime": 0.0, "port": 9}))
    process = PrometheusProcess(tmp_path)
    assert process.pid is None and not process.running()
    assert stop_prometheus(tmp_path) is False


def test_a_missing_binary_says_how_to_install_it():
    with pytest.raises(LabError, match=r"`lab-no-such-tool` binary is not on PATH: install it with "
                                       r"`sudo apt-get install prometheus`"):
        require_binary("lab-no-such-tool")
