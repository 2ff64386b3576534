"""Path (a)'s command line: the wheel's tritonserver on loopback, the ports given, no wrapper process."""
from pathlib import Path

from lab_helpers.compare.triton_standalone import FLAGS, command
from lab_helpers.runtime import triton_image


def test_the_command_runs_the_wheels_binary_on_loopback_with_the_given_ports(tmp_path: Path) -> None:
    argv = command(tmp_path / "repo", 18000, 18001, 18002)
    assert argv[0] == "env" and argv[3] == str(triton_image.binary())
    assert argv[1].startswith("LD_LIBRARY_PATH=") and str(triton_image.libs_dir()) in argv[1]
    assert argv[2].startswith(f"PATH={triton_image.venv() / 'bin'}")
    flags = argv[4:]
    assert flags[0] == f"--model-repository={tmp_path / 'repo'}"
    for flag in ("--http-port=18000", "--grpc-port=18001", "--metrics-port=18002", *FLAGS,
                 "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
                 f"--backend-directory={triton_image.backends_dir()}"):
        assert flag in flags
