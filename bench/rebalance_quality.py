"""Quality of the rebalance engine against the exact integer optimum (HiGHS).

    python bench/rebalance_quality.py [--accounts 300] [--positions 40] [--seed 11]

Builds a seeded book of varied accounts (whole lots of 1 and 100, fractional securities,
cash floors, withdrawals, restrictions, minimum trade values; bands off, trading to
target, no tax lots), rebalances it with the engine, then solves every account exactly
as a mixed-integer program with no more trades than the engine made, and prints the mean
residual drift of both, their ratio, trade counts, rule violations and speeds. Ends with
one line of JSON. Needs ``highspy`` (a development dependency).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portfolios.rebalance import Options, rebalance
from portfolios.rebalance.checks import check_trades
from portfolios.rebalance.prepare import prepare
from portfolios.rebalance.synthetic import synthetic_book


def quality_book(n_accounts: int, positions: int, seed: int):
    book = synthetic_book(
        n_accounts,
        positions,
        n_models=5,
        n_securities=120,
        seed=seed,
        lot_100_share=0.3,
        fractional_share=0.2,
        cash_floor_share=0.4,
        withdrawal_share=0.2,
        restricted_share=0.3,
        value_range=(30_000.0, 1_500_000.0),
    )
    rng = np.random.default_rng(seed + 1)
    acc = book.accounts
    acc["min_trade_value"] = rng.choice([0.0, 250.0, 1000.0, 2500.0], len(acc))
    return book


def solve_exact(prep, a: int, max_trades: int, time_limit: float, return_q: bool = False):
    """The exact optimum of account ``a``: (residual drift, trades, status[, quantities])."""
    import highspy

    rows = np.flatnonzero(prep.r_acct == a)
    n = len(rows)
    V = prep.value[a]
    p = prep.p[rows]
    h = prep.h[rows]
    # fractional securities (steps below one unit) trade continuously here: the optimum
    # is then a lower bound, a little in its own favour
    frac = prep.step[rows] < 1
    step = np.where(frac, 1.0, prep.step[rows])
    T = prep.t[rows] * V
    Tc = prep.cash_target[a] * V
    cash = prep.cash[a]
    long_only = prep.long_only[a]
    sv = step * p  # value of one unit of trade
    min_trade = max(prep.min_trade_value[a], 0.0)
    min_steps = np.maximum(prep.min_qty[rows], min_trade / p) / step
    min_steps = np.where(frac, min_steps, np.ceil(min_steps - 1e-9))
    # no optimum buys more than a step past the target (or the minimum trade): selling that
    # step back lowers the overweight and raises cash
    up_max = np.maximum(np.ceil(np.maximum(T - h * p, 0.0) / sv) + 1, min_steps)
    up_max = np.where(prep.dnb[rows], 0.0, up_max)
    lo_max = np.floor(h / step + 1e-9) if long_only else np.floor(2 * V / sv) + 1
    lo_max = np.where(prep.dns[rows], 0.0, np.maximum(lo_max, 0.0))
    # columns: u (n, int), l (n, int), bu (n, bin), bl (n, bin), e (n), ec
    nc = 4 * n + n + 1
    iu, il, ibu, ibl, ie, iec = 0, n, 2 * n, 3 * n, 4 * n, 5 * n
    cost = np.zeros(nc)
    cost[ie : ie + n] = 1.0 / V
    cost[iec] = 1.0 / V
    lower = np.zeros(nc)
    upper = np.concatenate([up_max, lo_max, np.ones(n), np.ones(n), np.full(n + 1, np.inf)])
    rlo, rhi, rows_idx, rows_val = [], [], [], []

    def row(idx, val, lo, hi):
        rows_idx.append(np.asarray(idx, dtype=np.int32))
        rows_val.append(np.asarray(val, dtype=float))
        rlo.append(lo)
        rhi.append(hi)

    inf = np.inf
    for i in range(n):
        row([iu + i, ibu + i], [1.0, -up_max[i]], -inf, 0.0)
        row([il + i, ibl + i], [1.0, -lo_max[i]], -inf, 0.0)
        row([iu + i, ibu + i], [1.0, -min_steps[i]], 0.0, inf)
        row([il + i, ibl + i], [1.0, -min_steps[i]], 0.0, inf)
        row([ibu + i, ibl + i], [1.0, 1.0], -inf, 1.0)
        # e_i >= +-(h p + sv (u - l) - T)
        row([ie + i, iu + i, il + i], [1.0, -sv[i], sv[i]], h[i] * p[i] - T[i], inf)
        row([ie + i, iu + i, il + i], [1.0, sv[i], -sv[i]], T[i] - h[i] * p[i], inf)
    # cash after = cash - sum sv (u - l)
    idx = np.r_[iec, iu : iu + n, il : il + n]
    row(idx, np.r_[1.0, sv, -sv], cash - Tc, inf)
    row(idx, np.r_[1.0, -sv, sv], Tc - cash, inf)
    row(np.r_[iu : iu + n, il : il + n], np.r_[sv, -sv], -inf, cash - prep.floor[a])
    row(np.r_[ibu : ibu + n, ibl : ibl + n], np.ones(2 * n), -inf, float(max_trades))

    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.setOptionValue("threads", 1)
    hs.setOptionValue("time_limit", time_limit)
    hs.setOptionValue("mip_rel_gap", 1e-6)
    hs.addCols(
        nc,
        cost,
        lower,
        upper,
        0,
        np.zeros(nc + 1, np.int32)[:nc],
        np.zeros(0, np.int32),
        np.zeros(0),
    )
    starts = np.cumsum([0] + [len(x) for x in rows_idx])[:-1].astype(np.int32)
    hs.addRows(
        len(rlo),
        np.array(rlo),
        np.array(rhi),
        int(sum(len(x) for x in rows_idx)),
        starts,
        np.concatenate(rows_idx),
        np.concatenate(rows_val),
    )
    integrality = np.ones(4 * n, dtype=np.uint8)
    integrality[:n][frac] = 0
    integrality[n : 2 * n][frac] = 0
    hs.changeColsIntegrality(4 * n, np.arange(4 * n, dtype=np.int32), integrality)
    hs.run()
    status = hs.modelStatusToString(hs.getModelStatus())
    x = np.array(hs.getSolution().col_value)
    q = (x[iu : iu + n] - x[il : il + n]) * step
    q = np.where(frac, q, np.round(q / step) * step)
    after = (h + q) * p
    cash_after = cash - (q * p).sum()
    drift = (np.abs(after - T).sum() + abs(cash_after - Tc)) / V
    if return_q:
        return drift, int((np.abs(q) > 1e-12).sum()), status, q
    return drift, int((np.abs(q) > 1e-12).sum()), status


def plain_drift(prep) -> np.ndarray:
    """Residual drift per account of the plain approach: each position to its target,
    rounded down to lots, buys scaled to the cash there is."""
    A, ra = prep.n_accounts, prep.r_acct
    V = prep.value[ra]
    p, h, step = prep.p, prep.h, prep.step
    q = (prep.t * V - h * p) / p
    q = np.where(prep.dnb, np.minimum(q, 0), q)
    q = np.where(prep.dns, np.maximum(q, 0), q)
    q = np.maximum(q, -h)
    q = np.sign(q) * np.floor(np.abs(q) / step + 1e-9) * step
    minv = np.maximum(prep.min_trade_value[ra], prep.min_qty * p)
    q = np.where(np.abs(q) * p < minv - 1e-9, 0.0, q)
    sells = np.bincount(ra, weights=np.maximum(-q, 0) * p, minlength=A)
    buys = np.bincount(ra, weights=np.maximum(q, 0) * p, minlength=A)
    room = np.maximum(prep.cash + sells - prep.floor, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(buys > room, room / buys, 1.0)
    qb = np.floor(q * scale[ra] / step + 1e-9) * step
    q = np.where(q > 0, qb, q)
    q = np.where(np.abs(q) * p < minv - 1e-9, 0.0, q)
    cash_after = prep.cash - np.bincount(ra, weights=q * p, minlength=A)
    dev = np.abs((h + q) * p / V - prep.t)
    return np.bincount(ra, weights=dev, minlength=A) + np.abs(
        cash_after / prep.value - prep.cash_target
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--positions", type=int, default=30)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--time-limit", type=float, default=10.0, help="per account, seconds")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--options", default="{}", help="engine Options as JSON")
    ap.add_argument("--cache", help="pickle file caching exact solutions between runs")
    args = ap.parse_args(argv)

    book = quality_book(args.accounts, args.positions, args.seed)
    opts = Options(**json.loads(args.options))
    t0 = time.perf_counter()
    res = rebalance(book, opts)
    engine_s = time.perf_counter() - t0
    violations = check_trades(book, res, opts)
    prep = prepare(book, opts)
    acc = res.accounts.set_index("account")
    ids = list(prep.acct_ids)
    eng, opt, eng_trades, opt_trades, statuses = [], [], [], [], {}
    cache = {}
    if args.cache and Path(args.cache).exists():
        cache = pickle.loads(Path(args.cache).read_bytes())
    t0 = time.perf_counter()
    solved = 0
    for acct in acc.index:
        a = ids.index(acct)
        k = int(acc.loc[acct, "trades"])
        key = (args.accounts, args.positions, args.seed, acct, k)
        if key not in cache:
            cache[key] = solve_exact(prep, a, k, args.time_limit)
            solved += 1
        d, n, st = cache[key]
        eng.append(float(acc.loc[acct, "drift_after"]))
        opt.append(d)
        eng_trades.append(k)
        opt_trades.append(n)
        statuses[st] = statuses.get(st, 0) + 1
    exact_s = time.perf_counter() - t0
    if args.cache:
        Path(args.cache).write_bytes(pickle.dumps(cache))
    if solved < len(acc):
        print(f"({len(acc) - solved} exact solutions from the cache: exact time not comparable)")
    eng, opt = np.array(eng), np.array(opt)
    ratio = eng.mean() / opt.mean()
    plain = plain_drift(prep)[[ids.index(x) for x in acc.index]]
    worst = int(np.argmax(eng - opt))
    print(f"accounts: {len(eng)} rebalanced, {len(res.skipped)} skipped")
    print(
        f"mean residual drift: engine {eng.mean():.6f}  optimum {opt.mean():.6f}  ratio {ratio:.4f}"
    )
    print(f"mean drift before: {acc['drift_before'].mean():.6f}")
    print(
        f"plain approach (to target, round down, scale buys): {plain.mean():.6f}  "
        f"ratio {plain.mean() / opt.mean():.4f}"
    )
    print(f"worst account gap: {eng[worst] - opt[worst]:.6f} ({acc.index[worst]})")
    if args.verbose:
        diff = eng - opt
        for i in np.argsort(diff)[:5].tolist() + np.argsort(diff)[-5:].tolist():
            print(
                f"  {acc.index[i]}: engine {eng[i]:.6f} optimum {opt[i]:.6f} "
                f"trades {eng_trades[i]}/{opt_trades[i]}"
            )
    print(f"trades: engine {sum(eng_trades)}  optimum {sum(opt_trades)}")
    print(f"rule violations: {len(violations)}")
    if len(violations):
        print(violations.head(20).to_string())
    print(
        f"engine: {engine_s:.3f}s ({engine_s / len(eng) * 1e3:.2f} ms/account)  "
        f"exact: {exact_s:.1f}s ({exact_s / len(eng) * 1e3:.0f} ms/account)  "
        f"statuses: {statuses}"
    )
    figures = {
        "bench": "rebalance_quality",
        "accounts": len(eng),
        "positions": args.positions,
        "seed": args.seed,
        "engine_mean_drift": round(float(eng.mean()), 6),
        "optimum_mean_drift": round(float(opt.mean()), 6),
        "ratio": round(float(ratio), 4),
        "mean_drift_before": round(float(acc["drift_before"].mean()), 6),
        "plain_mean_drift": round(float(plain.mean()), 6),
        "plain_ratio": round(float(plain.mean() / opt.mean()), 4),
        "engine_trades": int(sum(eng_trades)),
        "optimum_trades": int(sum(opt_trades)),
        "violations": len(violations),
        "engine_s": round(engine_s, 4),
        "exact_s": round(exact_s, 2),
        "speedup": round(exact_s / engine_s, 1),
        "exact_status": statuses,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
