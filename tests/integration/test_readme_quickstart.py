"""The README's API quickstart, run as a newcomer pastes it: one block, in bash, in the
project's folder, against a live server with the demo book and a real Celery worker
(PostgreSQL and Redis). It must end with the allocated fill; if the README drifts
from the API, this fails.

The one change made to the block is the server's address (the live server's port,
not 8000). Its `manage.py issue_token` calls reach the test database through
DATABASE_URL, as the worker does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import _database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- The API quickstart: tests/integration/test_readme_quickstart.py"


def quickstart() -> str:
    """The ```sh block that follows the marker comment in README.md."""
    readme = (ROOT / "README.md").read_text()
    assert MARKER in readme, "the README lost its quickstart marker"
    found = re.search(r"```sh\n(.*?)\n```", readme[readme.index(MARKER) :], re.DOTALL)
    assert found, "no ```sh block after the quickstart marker"
    return found.group(1)


def test_the_quickstart_is_one_block_with_nothing_to_fill_in():
    block = quickstart()
    assert "..." not in block and "<" not in block.replace("<<", ""), "a placeholder"
    assert block.startswith("API=http://127.0.0.1:8000/api/v1\n")


def test_the_readme_quickstart_ends_with_an_allocated_fill(
    celery_worker_process, live_server, tmp_path
):
    from config.demo import load_demo_data
    from trading.models import Allocation, Block

    load_demo_data()
    block = quickstart().replace("http://127.0.0.1:8000", live_server.url, 1)
    env = os.environ | {"DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        ["bash", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    (tmp_path / "quickstart.out").write_text(result.stdout + result.stderr)
    output = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr

    status_lines = [line for line in output if re.fullmatch(r"block \d+: \w+", line)]
    assert status_lines, output
    assert status_lines[-1].endswith(": allocated"), status_lines
    block_id = int(status_lines[-1].split()[1].rstrip(":"))
    assert "approved" in output and "released" in output, output  # the run's steps

    # The refused cancel is said in words: the route is filled, nothing is left.
    refused = [json.loads(line) for line in output if line.startswith('{"detail"')]
    assert any("nothing to cancel" in answer["detail"] for answer in refused), refused

    # The last line is the account's allocated fill, as the database has it.
    allocations = json.loads(output[-1])
    assert allocations["count"] >= 1
    booked = Allocation.objects.filter(block_id=block_id)
    assert {row["id"] for row in allocations["results"]} == set(booked.values_list("pk", flat=True))
    assert Block.objects.get(pk=block_id).status == Block.Status.ALLOCATED
    for row in allocations["results"]:
        assert row["block"] == block_id
        assert float(row["quantity"]) > 0 and float(row["price"]) > 0
