"""Packaging for dynamic-dynamodb."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
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
    python_requires=">=3.10",
    # tzdata: IANA time zones for [schedule:] sections where the system has none (slim images, Windows)
    install_requires=["boto3>=1.28", "python-daemon>=3.0", "lockfile>=0.12", "setproctitle>=1.3", "tzdata",
                      "prometheus-client>=0.17", "python-json-logger>=3.1"],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-xdist>=3",
            "hypothesis>=6",
            "moto[server]>=5.0",
            "supervisor>=4.2",
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
