"""The local prom/pushgateway image: the real binary on the pod's mapped loopback port."""
from __future__ import annotations

from lab_helpers.runtime import pushgateway
from lab_helpers.runtime.pod import PORTS_ENV, ROOT_ENV


def test_the_binary_listens_on_the_mapped_port_with_paths_inside_the_pod(monkeypatch, tmp_path):
    monkeypatch.setenv(PORTS_ENV, "9091=41234")
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    argv = pushgateway.argv(["--web.listen-address=:9091", "--persistence.file=/data/p.data", "--log.level=warn"],
                            "/usr/bin/prometheus-pushgateway")
    assert argv == ["/usr/bin/prometheus-pushgateway", "--web.listen-address=127.0.0.1:41234",
                    f"--persistence.file={tmp_path}/data/p.data", "--log.level=warn"]
