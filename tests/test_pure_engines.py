"""Every module of the pure-engines contract (pyproject.toml) imports without Django.

`lint-imports` checks what each module imports, not the package `__init__` that
Python runs first when the module is imported: a pure module inside a package
whose `__init__` imports Django passes the contract and still loads Django. This
imports each one in a fresh interpreter without settings and looks.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("django", "rest_framework", "celery")


def _pure_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    [contract] = [
        c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "pure-engines"
    ]
    return contract["source_modules"]


def test_the_contract_names_the_engines():
    assert {"trading.fix", "trading.brokers.fixmap", "portfolios.rebalance"} <= set(_pure_modules())


@pytest.mark.parametrize("module", _pure_modules())
def test_a_pure_engine_imports_without_django(module):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        f"import sys, {module}; "
        f"loaded = [m for m in {FORBIDDEN!r} if m in sys.modules]; "
        "assert not loaded, f'imports {loaded}'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
