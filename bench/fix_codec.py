"""Codec benchmark: encode + decode per second on one core.

A mix of NewOrderSingle and ExecutionReport (FIX 4.4), built from Python
values and parsed back to (tag, value) access, with our codec, ``simplefix``
and the QuickFIX binding on the same messages; plus merely splitting the
bytes as a floor.  Each figure is the best of several timed rounds, after an
untimed warm-up.
Ends by printing one line of JSON.

    python bench/fix_codec.py [--rounds 5] [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.fix.codec import Message, decode, encode_fields

TS = "20260105-14:30:00.000"
HEADER = [(34, "1234"), (49, "OMS"), (52, TS), (56, "BROKER")]
NOS = [
    (1, "ACC-1"),
    (11, "ORD-000123"),
    (38, "1500"),
    (40, "2"),
    (44, "101.25"),
    (54, "1"),
    (55, "IBM"),
    (59, "0"),
    (60, TS),
]
ER = [
    (1, "ACC-1"),
    (6, "101.2"),
    (11, "ORD-000123"),
    (14, "500"),
    (17, "EXEC-77"),
    (31, "101.2"),
    (32, "500"),
    (37, "BRK-9"),
    (38, "1500"),
    (39, "1"),
    (40, "2"),
    (44, "101.25"),
    (54, "1"),
    (55, "IBM"),
    (60, TS),
    (150, "F"),
    (151, "1000"),
]
MIX = [("D", NOS), ("8", ER)]


def ours() -> None:
    for mt, body in MIX:
        raw = encode_fields("FIX.4.4", mt, HEADER, body)
        m = decode(raw)
        m.get(55)
        m.get(11)


def ours_message_api() -> None:
    for mt, body in MIX:
        raw = Message(mt, body, begin_string="FIX.4.4", header=HEADER).encode()
        m = decode(raw)
        m.get(55)


def split_only(raws) -> None:
    for raw in raws:
        [f.partition(b"=") for f in raw.split(b"\x01")]


def make_simplefix():
    import simplefix

    def run() -> None:
        for mt, body in MIX:
            m = simplefix.FixMessage()
            m.append_pair(8, "FIX.4.4")
            m.append_pair(35, mt)
            for t, v in HEADER:
                m.append_pair(t, v, header=True)
            for t, v in body:
                m.append_pair(t, v)
            raw = m.encode()
            p = simplefix.FixParser()
            p.append_buffer(raw)
            out = p.get_message()
            out.get(55)
            out.get(11)

    return run


def make_quickfix():
    import quickfix as fix

    def run() -> None:
        for mt, body in MIX:
            m = fix.Message()
            h = m.getHeader()
            h.setField(8, "FIX.4.4")
            h.setField(35, mt)
            for t, v in HEADER:
                h.setField(t, v)
            for t, v in body:
                m.setField(t, v)
            raw = m.toString()
            out = fix.Message(raw, False)
            out.getField(55)
            out.getField(11)

    return run


def rate(fn, n: int, rounds: int, per_call: int) -> float:
    timeit.timeit(fn, number=max(1, n // 10))  # warm-up, untimed
    best = min(timeit.repeat(fn, number=n, repeat=rounds))
    return n * per_call / best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=20000)
    args = p.parse_args(argv)
    n, rounds = args.n, args.rounds
    raws = [encode_fields("FIX.4.4", mt, HEADER, body) for mt, body in MIX]
    results = {
        "ours_msgs_per_s": rate(ours, n, rounds, len(MIX)),
        "ours_message_api_msgs_per_s": rate(ours_message_api, n, rounds, len(MIX)),
        "split_only_msgs_per_s": rate(lambda: split_only(raws), n, rounds, len(MIX)),
    }
    try:
        results["simplefix_msgs_per_s"] = rate(make_simplefix(), max(1, n // 4), rounds, len(MIX))
    except ImportError:
        results["simplefix_msgs_per_s"] = None
    try:
        results["quickfix_msgs_per_s"] = rate(make_quickfix(), max(1, n // 4), rounds, len(MIX))
    except ImportError:
        results["quickfix_msgs_per_s"] = None
    for k in ("simplefix", "quickfix"):
        other = results[f"{k}_msgs_per_s"]
        results[f"ratio_vs_{k}"] = round(results["ours_msgs_per_s"] / other, 2) if other else None
    results = {
        k: (round(v) if isinstance(v, float) and not k.startswith("ratio") else v)
        for k, v in results.items()
    }
    results.update(
        benchmark="fix_codec",
        unit="encode+decode per second, one core",
        target_msgs_per_s=50000,
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    for k, v in results.items():
        print(f"{k:32} {v}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
