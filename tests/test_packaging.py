"""What a user installs: the sdist's contents, the man page, the package metadata."""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _strip_volatile(text: str) -> str:
    """A man page without the lines that name the date or the generator's version."""
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith((".TH", '.\\" Man page generated', '.\\" by the Docutils')))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tarfile.TarFile:
    out = tmp_path_factory.mktemp("sdist")
    build = tmp_path_factory.mktemp("sdist-build")
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(build), "sdist", "-d", str(out)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    (archive,) = out.glob("*.tar.gz")
    return tarfile.open(archive)


def test_the_sdist_carries_docs_examples_and_the_test_support(sdist):
    names = {re.sub(r"^[^/]+/", "", n) for n in sdist.getnames()}
    for expected in ("docs/index.rst", "docs/conf.py", "docs/dynamic-dynamodb.1", "examples/recommended.conf",
                     "examples/traces/sample-week.csv", "tests/support/rules_proxy.py", "tests/conftest.py",
                     "example-dynamic-dynamodb.conf", "Makefile", "LICENSE", "pyproject.toml"):
        assert expected in names, expected
    assert not any(n.startswith("docs/_build") for n in names)


def test_data_files_name_files_that_exist():
    text = (REPO / "setup.py").read_text(encoding="utf-8")
    for path in re.findall(r'"((?:docs|examples)/[^"]+)"', text):
        assert (REPO / path).is_file(), path


def test_the_committed_man_page_is_the_one_the_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    docutils = pytest.importorskip("docutils")
    committed = (REPO / "docs" / "dynamic-dynamodb.1").read_text(encoding="utf-8")
    writer = re.search(r"by the Docutils (\d+\.\d+)\S* manpage writer", committed)
    if writer is None or not docutils.__version__.startswith(writer.group(1) + "."):
        # another Docutils release writes the same page differently (section titles in capitals,
        # say): a Python too old for the Docutils that made the committed page gets an older one
        pytest.skip(f"the committed man page was written by Docutils {writer.group(1) if writer else '?'}, "
                    f"this is {docutils.__version__}")
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "man", str(REPO / "docs"), str(tmp_path)],
                   check=True, capture_output=True, text=True)
    built = (tmp_path / "dynamic-dynamodb.1").read_text(encoding="utf-8")
    assert _strip_volatile(built) == _strip_volatile(committed), "run `make man` and commit docs/dynamic-dynamodb.1"
    # a link to another page of the docs is its title alone: the man writer would print an empty <> after it
    assert "<>" not in committed
