"""Standalone servers are recorded while they run; `down` stops what an interrupted run left, nothing else."""
import subprocess
import sys

import psutil

from lab_helpers.compare.servers import _write, recorded, records_path, stop_recorded
from lab_helpers.processes import ProcessRecord


def _sleeper(port: int) -> subprocess.Popen:
    # The "port" is on its command line, as every standalone server's is.
    return subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(60)", str(port)],
                            start_new_session=True)


def test_stop_recorded_stops_a_left_server_and_forgets_the_records(tmp_path) -> None:
    left = _sleeper(40123)
    _write(records_path(tmp_path), {"standalone-triton": {**ProcessRecord.of(psutil.Process(left.pid)).to_json(),
                                                          "port": 40123}})
    assert recorded(tmp_path) == ["standalone-triton"]
    assert stop_recorded(tmp_path) == ["standalone-triton"]
    assert left.wait(timeout=10) is not None
    assert recorded(tmp_path) == []


def test_a_record_whose_pid_is_now_someone_else_is_left_alone(tmp_path) -> None:
    bystander = _sleeper(40124)
    try:
        record = {**ProcessRecord.of(psutil.Process(bystander.pid)).to_json(), "port": 40124}
        stale = {"start-time": {**record, "createTime": record["createTime"] - 100},
                 "other-port": {**record, "port": 40999}}
        _write(records_path(tmp_path), stale)
        assert stop_recorded(tmp_path) == []
        assert bystander.poll() is None
        assert recorded(tmp_path) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_nothing_recorded_nothing_stopped(tmp_path) -> None:
    assert stop_recorded(tmp_path) == [] and recorded(tmp_path) == []
