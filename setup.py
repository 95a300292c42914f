"""Packaging for dynamic-dynamodb."""
import os
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# DYNAMIC_DYNAMODB_COMPILE=1 builds the pure policy core (with the plain values it reads) and the
# simulator as C extensions with mypyc, mypy's compiler, from the same type-checked sources: the same
# decisions, made in about half the time. The daemon's shell (loop, AWS adapters, config, the adapters'
# errors in model.py) stays Python in every build.
COMPILED = ["demand", "forecast", "frozen", "observe", "policy", "reasons", "rules", "schedule", "targets",
            "simulation/baselines", "simulation/ports", "simulation/run", "simulation/score",
            "simulation/trace", "simulation/world"]


def compiled_modules() -> list:
    """The C extensions of a compiled build; none for a pure-Python one (the default)."""
    if os.environ.get("DYNAMIC_DYNAMODB_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit("DYNAMIC_DYNAMODB_COMPILE=1 needs mypy (which provides mypyc) in the build environment: "
                         "pip install mypy, then build with --no-build-isolation") from None
    # the dependencies may not be installed yet (pip installs them after the build): their types are
    # not needed, as the compiled modules use only the standard library and this package
    return mypycify(["--ignore-missing-imports", *(f"dynamic_dynamodb/{m}.py" for m in COMPILED)], opt_level="3",
                    target_dir=os.environ.get("DYNAMIC_DYNAMODB_COMPILE_DIR", "build/mypyc"))


VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "dynamic_dynamodb" / "__init__.py").read_text()).group(1)

setup(
    name="dynamic-dynamodb",
    version=VERSION,
    description="Autoscaling of provisioned AWS DynamoDB tables and global secondary indexes",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    packages=find_packages(include=["dynamic_dynamodb", "dynamic_dynamodb.*"]),
    # the man page (`make man` rebuilds it from docs/command_line.rst)
    data_files=[("share/man/man1", ["docs/dynamic-dynamodb.1"])],
    ext_modules=compiled_modules(),
    python_requires=">=3.10",
    # tzdata: IANA time zones for [schedule:] sections where the system has none (slim images, Windows)
    install_requires=["boto3>=1.28", "python-daemon>=3.0", "lockfile>=0.12", "setproctitle>=1.3", "tzdata",
                      "prometheus-client>=0.17", "python-json-logger>=3.1",
                      # mypyc_attr: how a compiled build lays out a class; a no-op in pure Python
                      "mypy_extensions>=1.0"],
    extras_require={
        "test": [
            # pytest 9.2 derives a node's id from another attribute than the one pytest-xdist 3.8's
            # loadgroup renames: xdist_group would be ignored (tests/test_xdist_groups.py)
            "pytest>=7,<9.2",
            "pytest-xdist>=3",
            "hypothesis>=6",
            "moto[server]>=5.0",
            "supervisor>=4.2",
            # the tests build the sdist and the compiled build with setup.py in the venv, and a
            # venv of Python 3.12 or newer comes without setuptools
            "setuptools>=77",  # as pyproject.toml builds with
        ],
        "plot": ["matplotlib>=3.7"],
        "docs": ["sphinx>=7"],
        "dev": ["ruff>=0.6", "mypy>=1.10"],
    },
    entry_points={"console_scripts": ["dynamic-dynamodb = dynamic_dynamodb.cli:main"]},
    classifiers=[
        "Environment :: No Input/Output (Daemon)",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Systems Administration",
    ],
)
