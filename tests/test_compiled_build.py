"""The compiled build (DYNAMIC_DYNAMODB_COMPILE=1, mypyc): built from these sources, it decides as they do.

The build is made once, as `make compiled` makes it, into a temporary folder; its
programs run as separate processes with only that folder on PYTHONPATH, from a folder that holds no
source, so that the compiled modules and not the checkout's are the ones imported.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

# one worker builds once and runs them all: the build takes half a minute
pytestmark = pytest.mark.xdist_group("compiled")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_WEEK = REPO / "examples" / "traces" / "sample-week.csv"
# the unit tests of the compiled modules, run again against the compiled build
# (the forecast's own, mostly Hypothesis, are left to the simulations below, which run it)
# (test_loop and test_throttle_causes: the interpreted pass over the compiled observe and targets)
UNIT_TESTS = ("test_policy.py", "test_demand.py", "test_schedule.py", "test_simulation_world.py",
              "test_simulation_trace.py", "test_loop.py", "test_throttle_causes.py")

SALES_HOURS = """\
[global]
check-interval: 60

[schedule: sales]
hours: 16:00-22:00
days: mon-fri
timezone: Europe/Berlin
min-provisioned-reads: 400
min-provisioned-writes: 80

[default_options]
scaling-policy: demand
schedules: sales
min-provisioned-reads: 5
min-provisioned-writes: 5

[table: .*]
"""


def compiled_names() -> list[str]:
    """The modules setup.py compiles, as dotted names (read from setup.py itself)."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED" for t in node.targets):
            return ["dynamic_dynamodb." + m.replace("/", ".") for m in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no COMPILED list")


# session-scoped: a worker may run other modules' tests between these, and must not build again
@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    """The compiled build's folder (what `make compiled` makes as build/compiled)."""
    pytest.importorskip("mypyc")
    base = tmp_path_factory.mktemp("compiled")
    env = dict(os.environ, DYNAMIC_DYNAMODB_COMPILE="1", DYNAMIC_DYNAMODB_COMPILE_DIR=str(base / "mypyc"))
    done = subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", str(base / "setup"),
                           "--build-lib", str(base / "lib")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return base / "lib"


def run(pythonpath: Path, args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """A Python process that imports dynamic_dynamodb from `pythonpath` only."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath), PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_compiled_modules_are_extensions_and_the_rest_is_python(build, tmp_path):
    names = compiled_names()
    probe = ("import importlib, sys\n"
             "for name in sys.argv[1:]:\n"
             "    print(name, importlib.import_module(name).__file__)\n")
    done = run(build, ["-c", probe, *names, "dynamic_dynamodb.loop", "dynamic_dynamodb.aws"], tmp_path)
    assert done.returncode == 0, done.stderr
    files = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    for name in names:
        assert files[name].startswith(str(build)) and files[name].endswith(".so"), (name, files[name])
    # the daemon's shell stays Python in every build
    assert files["dynamic_dynamodb.loop"].endswith("loop.py") and files["dynamic_dynamodb.aws"].endswith("aws.py")
    version = run(build, ["-m", "dynamic_dynamodb", "--version"], tmp_path)
    assert version.stdout.strip().endswith("(compiled by mypyc)"), version.stdout


def test_the_source_tree_holds_no_compiled_module():
    # an extension built in place (pip install -e with DYNAMIC_DYNAMODB_COMPILE=1) would shadow its .py:
    # edits to the source would silently not run
    stale = sorted(str(p.relative_to(REPO)) for p in (REPO / "dynamic_dynamodb").rglob("*.so"))
    assert not stale, f"remove {', '.join(stale)}: make compiled builds into build/compiled instead"


@pytest.mark.parametrize("config", ["recommended", "sales-hours"])
def test_a_simulation_is_the_same_byte_for_byte_in_both_builds(build, tmp_path, config):
    if config == "recommended":
        conf = REPO / "examples" / "recommended.conf"
    else:
        conf = tmp_path / f"{config}.conf"
        conf.write_text(SALES_HOURS)
    outputs = {}
    for label, path in (("pure", REPO), ("compiled", build)):
        out = tmp_path / label
        done = run(path, ["-m", "dynamic_dynamodb", "--config", str(conf), "--simulate", str(SAMPLE_WEEK),
                          "--simulate-output", str(out)], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[label] = (done.stdout.replace(str(out), "OUT"), (out / "timeline.csv").read_text(),
                          (out / "report.json").read_text().replace(str(out), "OUT"))
    assert "decreases" in outputs["pure"][2]
    assert outputs["compiled"] == outputs["pure"]


def test_the_compiled_modules_pass_their_unit_tests(build, tmp_path):
    tests = [str(REPO / "tests" / name) for name in UNIT_TESTS]
    probe = tmp_path / "test_probe.py"  # run with them: the modules they test are the compiled ones
    probe.write_text("import dynamic_dynamodb.policy, dynamic_dynamodb.simulation.world\n\n"
                     "def test_the_compiled_modules_are_imported():\n"
                     "    for module in (dynamic_dynamodb.policy, dynamic_dynamodb.simulation.world):\n"
                     f"        assert module.__file__.startswith({str(build)!r}), module.__file__\n")
    # the tests' own support package (tests/) is found by pytest's rootdir; the package only on PYTHONPATH
    done = run(build, ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-c", str(REPO / "pytest.ini"),
                       "--rootdir", str(REPO), str(probe), *tests], tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_the_compiled_values_pickle_and_copy_as_in_python(build, tmp_path):
    # a benchmark sends reports between processes; a native frozen class could not be unpickled
    probe = f"""
import copy, pickle
from dynamic_dynamodb import policy
from dynamic_dynamodb.config import load_settings
from dynamic_dynamodb.model import Capacity, Target, TargetStatus
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.simulation import simulate
report = simulate(load_settings(["--config", {str(REPO / "examples" / "recommended.conf")!r}]), {str(SAMPLE_WEEK)!r},
                  None, progress=None)
decision = policy.skipped(TargetStatus(Target("t"), "ACTIVE", "", Capacity(5, 5)), Reason.NOT_FOUND, "gone")
from dynamic_dynamodb.rules import Schedule, TargetRules, Window
from datetime import time
rules = TargetRules(maintenance_windows=(Window(time(1), time(2)),), schedules=(Schedule("s", ()),))
for value in (report, report.config, report.trace, decision, policy.Memory(read_checks=2), rules, decision.status):
    assert pickle.loads(pickle.dumps(value)) == value, type(value)
    assert copy.deepcopy(value) == value, type(value)
print("ok")
"""
    done = run(build, ["-c", probe], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
