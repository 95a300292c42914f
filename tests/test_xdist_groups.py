"""The suite's own set-up: `make test`'s `--dist loadgroup` really keeps an xdist_group on one worker.

The compiled build is made once per worker, and the busiest daemon tests must not run side by side:
both rest on it, and a pytest/pytest-xdist pair that drops the group says nothing.
"""
from __future__ import annotations

import re
import subprocess
import sys

GROUPED = """\
import pytest

pytestmark = pytest.mark.xdist_group("together")


def test_one():
    pass


def test_two():
    pass


def test_three():
    pass


def test_four():
    pass
"""


def test_the_tests_of_a_group_run_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "3", "--dist",
                           "loadgroup", "-v", "test_grouped.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    workers = re.findall(r"\[(gw\d+)\].*PASSED", done.stdout)
    assert len(workers) == 4 and len(set(workers)) == 1, done.stdout[-2000:]
