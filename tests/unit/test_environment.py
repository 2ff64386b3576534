"""environment.yml must give the same environment as pyproject.toml: Python version and this package."""
import tomllib

import yaml

from lab_helpers.paths import REPO_ROOT


def test_environment_yml_installs_this_package_with_the_same_python():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert project["requires-python"] == ">=" + python.split("=", 1)[1]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    # Dependencies come from pyproject.toml only: the conda file installs the package, never a second list.
    assert pip_section == ["-e .[test,jupyter]"]
    assert set(project["optional-dependencies"]) >= {"test", "jupyter"}
