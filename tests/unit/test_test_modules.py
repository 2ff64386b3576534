"""Test modules have unique file names across tests/: pytest's default import mode puts each test folder on
sys.path and imports a module by its basename, so a second test_x.py in another folder stops collection."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_file_name() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
