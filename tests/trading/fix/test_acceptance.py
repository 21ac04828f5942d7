"""QuickFIX's session acceptance scenarios, run against our echo acceptor.

Every scenario runs twice, concurrently (the heartbeat scenarios wait on real
timers, so the whole set costs about as long as the slowest one):

* against an in-process acceptor built by ``build_echo_acceptor``, fresh per
  scenario, and
* through the command-line program ``python -m trading.fix.echo_acceptor``
  started as subprocesses without Django settings (scenarios run one after
  another on each process, as QuickFIX's own runner does).

The scenario files are read from ``$OMS_FIX_ACCEPTANCE_DIR`` (default
``<repo>/../shared/fix-acceptance``); they are never copied into the project.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trading.fix.acceptance import (
    acceptance_dir,
    build_outgoing,
    compare,
    load_formats,
    parse_scenario,
    run_scenario,
    scenario_files,
)
from trading.fix.echo_acceptor import build_echo_acceptor

from .conftest import free_port, require, start_listener

REPO = Path(__file__).resolve().parents[3]
DIR = acceptance_dir()
FILES = scenario_files(DIR) if DIR else []
NAMES = [f"{p.parent.name}/{p.name}" for p in FILES]


def _cli_groups(files: list[Path]) -> list[list[Path]]:
    """Split the files over a few echo_acceptor processes, slow ones apart."""
    slow = [f for f in files if f.name.startswith(("6_", "4a_"))]
    rest = [f for f in files if f not in slow]
    groups = [[f] for f in slow if f.name.startswith("6_")]
    groups.append([f for f in slow if f.name.startswith("4a_")])
    groups += [[f for f in rest if f.parent.name == v] for v in ("fix42", "fix44")]
    return [g for g in groups if g]


async def _inprocess(path: Path, formats):
    acc = build_echo_acceptor(0, tick=0.1)
    await acc.start()
    try:
        return await run_scenario(path, acc.port, formats=formats, timeout=15)
    finally:
        await acc.stop()


async def _cli_group(files: list[Path], formats):
    proc, port = await start_listener("-m", "trading.fix.echo_acceptor", "--port", "0")
    try:
        return [await run_scenario(f, port, formats=formats, timeout=15) for f in files]
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _run_all():
    formats = load_formats(DIR)
    inproc = asyncio.gather(*(_inprocess(f, formats) for f in FILES))
    cli = asyncio.gather(*(_cli_group(g, formats) for g in _cli_groups(FILES)))
    a, b = await asyncio.gather(inproc, cli)
    return {r.name: r for r in a}, {r.name: r for group in b for r in group}


@pytest.fixture(scope="module")
def results():
    require(DIR is not None, "FIX acceptance scenarios not found (OMS_FIX_ACCEPTANCE_DIR)")
    return asyncio.run(_run_all())


def test_scenario_set_is_complete():
    require(DIR is not None, "FIX acceptance scenarios not found (OMS_FIX_ACCEPTANCE_DIR)")
    assert sum(n.startswith("fix42/") for n in NAMES) == 49
    assert sum(n.startswith("fix44/") for n in NAMES) == 50


@pytest.mark.parametrize("name", NAMES or ["scenarios-missing"])
def test_scenario(name, results):
    inproc, cli = results
    r = inproc[name]
    assert r.passed, f"in-process: {r.error}\n" + "\n".join(r.transcript[-6:])
    c = cli[name]
    assert c.passed, f"echo_acceptor CLI: {c.error}\n" + "\n".join(c.transcript[-6:])


# -- the harness itself must be able to fail ---------------------------------


def test_compare_detects_differences():
    fmts = load_formats(None)
    exp = "8=FIX.4.2\x019=5\x0135=0\x0134=2\x0149=ISLD\x0152=x\x0156=TW\x0110=0\x01"
    good = build_outgoing("8=FIX.4.2\x0135=0\x0134=2\x0149=ISLD\x0152=<TIME>\x0156=TW\x01")
    assert compare(exp, good, fmts) is None
    wrong_seq = build_outgoing("8=FIX.4.2\x0135=0\x0134=3\x0149=ISLD\x0152=<TIME>\x0156=TW\x01")
    assert "34" in compare(exp, wrong_seq, fmts)
    order = build_outgoing("8=FIX.4.2\x0135=0\x0149=ISLD\x0134=2\x0152=<TIME>\x0156=TW\x01")
    assert "fields differ" in compare(exp, order, fmts)
    bad_time = build_outgoing("8=FIX.4.2\x0135=0\x0134=2\x0149=ISLD\x0152=soon\x0156=TW\x01")
    assert "52" in compare(exp, bad_time, fmts)
    corrupt = good[:-4] + b"000\x01" if not good.endswith(b"=000\x01") else good[:-4] + b"001\x01"
    assert "malformed" in compare(exp, corrupt, fmts)


def test_parse_scenario_and_outgoing():
    steps = parse_scenario(
        "# c\n\ni1,CONNECT\nI1,8=FIX.4.2\x0135=0\x01\nE2,8=FIX.4.2\x01\ne2,DISCONNECT\niDISCONNECT\n"
    )
    assert [(s.action, s.conn) for s in steps] == [
        ("connect", 1),
        ("send", 1),
        ("expect", 2),
        ("expect_disconnect", 2),
        ("disconnect", 1),
    ]
    raw = build_outgoing("8=FIX.4.2\x0135=0\x0134=2\x01")
    assert raw == b"8=FIX.4.2\x019=10\x0135=0\x0134=2\x0110=%03d\x01" % (
        sum(b"8=FIX.4.2\x019=10\x0135=0\x0134=2\x01") & 255
    )
    kept = build_outgoing("8=FIX.4.2\x019=99\x0135=0\x0110=256\x01")
    assert kept == b"8=FIX.4.2\x019=99\x0135=0\x0110=256\x01"


def test_wrong_echo_fails_a_scenario(tmp_path):
    """A scenario expecting something our acceptor does not do must fail."""
    require(DIR is not None, "FIX acceptance scenarios not found (OMS_FIX_ACCEPTANCE_DIR)")
    src = (DIR / "fix42" / "4b_ReceivedTestRequest.def").read_text(encoding="latin-1")
    (tmp_path / "fix42").mkdir()
    bad = tmp_path / "fix42" / "bad.def"
    bad.write_text(src.replace("112=HELLO|".replace("|", "\x01") + "10=0", "112=HELLX\x0110=0"))
    assert bad.read_text() != src

    async def go():
        acc = build_echo_acceptor(0)
        await acc.start()
        try:
            return await run_scenario(bad, acc.port, formats=load_formats(DIR), timeout=5)
        finally:
            await acc.stop()

    r = asyncio.run(go())
    assert not r.passed and "112" in r.error


def test_echo_acceptor_cli_with_fixed_port():
    """The documented form: ``python -m trading.fix.echo_acceptor --port PORT``."""
    require(DIR is not None, "FIX acceptance scenarios not found (OMS_FIX_ACCEPTANCE_DIR)")

    async def go():
        port = free_port()
        proc, ready = await start_listener("-m", "trading.fix.echo_acceptor", "--port", str(port))
        try:
            assert ready == port
            return await run_scenario(DIR / "fix44" / "1a_ValidLogonWithCorrectMsgSeqNum.def", port)
        finally:
            proc.terminate()
            await proc.wait()

    r = asyncio.run(go())
    assert r.passed, r.error
