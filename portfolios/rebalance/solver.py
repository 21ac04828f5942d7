"""The optimiser: choose a lot-rounded trade for every row of many accounts at once.

For one account, let d_i be the value held of security i after the trades less its target
value, and let cash take up the rest. Because the account's value does not change when it
trades, the cash deviation is -sum(d_i), and the residual drift (in value) is

    sum |d_i| + |sum d_i| = 2 * max(P, N)

where P is the total of the overweights (d_i > 0) and N the total of the underweights.
Each security can only land on a lattice of quantities (whole lots, minimum trade sizes,
restrictions); the best two candidates are the feasible quantities just below (``lo``) and
just above (``hi``) its ideal trade. Moving a security from lo to hi raises P by dP and
lowers N by dN, and raises S = P - N (which is also the cash spent beyond the cash target)
by dP + dN. The cash floor bounds S from above.

So the problem is a balanced partition: pick the securities to round up so as to minimise
max(P, N) with S <= slack. It is solved in vectorised passes over a dense (accounts x
positions) matrix, chunked to stay small:

1. greedy passes in a few orders (by dN / dP, by dN, by size), skipping a move that breaks
   the cash floor or does not improve; the best per account is kept;
2. where the result is further than a small gap from the LP bound, every subset of the
   account's few largest moves, each completed by the best ratio-ordered prefix of the
   others (a near-exact knapsack for coarse lots);
3. local search: the best single toggle, or the best pair of toggles among each account's
   most promising candidates, per account and per round, while it improves;
4. accounts whose cash floor or cash need cannot be met sell more: overweights to target
   first, then fewer buys, then other positions.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-9


def seg_starts(acc: np.ndarray) -> np.ndarray:
    """Start of each run of equal values in a sorted array."""
    if len(acc) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])


def seg_cumsum(values: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every new value of the sorted ``acc``."""
    if len(values) == 0:
        return values.copy()
    cs = np.cumsum(values)
    starts = seg_starts(acc)
    before = np.r_[0.0, cs][starts]
    counts = np.diff(np.r_[starts, len(values)])
    return cs - np.repeat(before, counts)


def seg_rank(acc: np.ndarray) -> np.ndarray:
    """Position of each element within its run of the sorted ``acc``."""
    if len(acc) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = seg_starts(acc)
    counts = np.diff(np.r_[starts, len(acc)])
    return np.arange(len(acc)) - np.repeat(starts, counts)


def round_down(x, step, qmin, qmax, minq, h, closeout):
    """The largest feasible trade <= x (NaN when there is none).

    Feasible: a multiple of step (or -h, selling the whole position, when ``closeout``),
    within [qmin, qmax], and zero or at least ``minq`` in size.
    """
    q = np.floor(x / step + EPS) * step
    q = np.minimum(q, np.floor(qmax / step + EPS) * step)
    co = closeout & (-h <= x + EPS)
    q = np.where(co & (q < -h), -h, q)
    q = np.where(q < qmin - EPS, np.nan, q)
    q = np.where((q > 0) & (q < minq - EPS), 0.0, q)
    small = (q < 0) & (-q < minq - EPS)
    alt = -np.ceil(minq / step - EPS) * step
    alt = np.where(co & (alt < -h), -h, alt)
    alt = np.where((alt < qmin - EPS) | (-alt < minq - EPS), np.nan, alt)
    return np.where(small, alt, q)


def round_up(x, step, qmin, qmax, minq, h, closeout):
    """The smallest feasible trade >= x (NaN when there is none)."""
    q = np.ceil(x / step - EPS) * step
    q = np.maximum(q, np.ceil(qmin / step - EPS) * step)
    co = closeout & (x <= -h + EPS)
    q = np.where(co & (q > -h), -h, q)
    q = np.where(q > qmax + EPS, np.nan, q)
    q = np.where((q < 0) & (-q < minq - EPS), 0.0, q)
    small = (q > 0) & (q < minq - EPS)
    alt = np.ceil(minq / step - EPS) * step
    alt = np.where(alt > qmax + EPS, np.nan, alt)
    return np.where(small, alt, q)


def solve(
    acc: np.ndarray,
    n_acc: int,
    p: np.ndarray,
    h: np.ndarray,
    target: np.ndarray,
    qmin: np.ndarray,
    qmax: np.ndarray,
    step: np.ndarray,
    minq: np.ndarray,
    slack: np.ndarray,
    scale: np.ndarray,
    rounds: int = 4,
    pair_candidates: int = 6,
    coarse: int = 6,
    qmin_hard: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Trades for rows sorted by account ``acc`` (0..n_acc-1).

    ``target``: target value of each row; ``slack``: how much S = sum of (value after - target)
    may reach (target cash less the floor); ``scale``: the account values (tolerances);
    ``qmin_hard``: the lowest trade allowed when cash must be raised for the floor (default
    ``qmin``; lower than ``qmin`` where a position inside its band may then be sold).
    Returns (q, short): the trade quantities and, per account, the cash still missing
    to meet the floor (0 when met).
    """
    R = len(acc)
    tol = EPS * np.maximum(scale, 1.0)
    closeout = (h > 0) & (qmin <= -h + EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        ideal = (target - h * p) / p
    x = np.clip(ideal, qmin, qmax)
    lo = round_down(x, step, qmin, qmax, minq, h, closeout)
    hi = round_up(x, step, qmin, qmax, minq, h, closeout)
    has_lo = ~np.isnan(lo)
    has_hi = ~np.isnan(hi)
    base = np.where(has_lo, lo, np.where(has_hi, hi, 0.0))
    flip_ok = has_lo & has_hi & (hi > lo + EPS)
    d_base = (h + base) * p - target
    d_hi = (h + np.where(flip_ok, hi, base)) * p - target
    pos_b, neg_b = np.maximum(d_base, 0), np.maximum(-d_base, 0)
    dP = np.maximum(d_hi, 0) - pos_b
    dN = neg_b - np.maximum(-d_hi, 0)
    P = np.bincount(acc, weights=pos_b, minlength=n_acc)
    N = np.bincount(acc, weights=neg_b, minlength=n_acc)
    flipped = np.zeros(R, dtype=bool)
    fi = np.flatnonzero(flip_ok)
    if len(fi):
        fa = acc[fi]
        for rows_sel, accs in _chunks(fa):
            sub = fi[rows_sel]
            flipped[sub] = _choose(
                fa[rows_sel],
                accs,
                dP[sub],
                dN[sub],
                P[accs],
                N[accs],
                slack[accs],
                tol[accs],
                rounds,
                pair_candidates,
                coarse,
            )
    P = P + np.bincount(acc[flipped], weights=dP[flipped], minlength=n_acc)
    N = N - np.bincount(acc[flipped], weights=dN[flipped], minlength=n_acc)

    q = np.where(flipped, hi, base)

    # 3. cash floor or need not met: cancel buys, then sell more, most overweight first
    S = P - N
    short = np.maximum(S - slack, 0.0)
    short[short <= tol] = 0.0
    if short.any():
        # within the bands first; positions inside their band only if that is not enough
        q, short = _raise_cash(acc, n_acc, p, h, target, q, qmin, step, minq, closeout, short, tol)
        if qmin_hard is not None and short.any():
            closeout = (h > 0) & (qmin_hard <= -h + EPS)
            q, short = _raise_cash(
                acc, n_acc, p, h, target, q, qmin_hard, step, minq, closeout, short, tol
            )
    return q, short


MAX_CELLS = 2_000_000


def _chunks(fa: np.ndarray):
    """Split the sorted account ids ``fa`` into groups of accounts whose dense
    (accounts x positions) matrix stays small; yields (row selector, accounts)."""
    starts = seg_starts(fa)
    counts = np.diff(np.r_[starts, len(fa)])
    accs = fa[starts]
    order = np.argsort(counts, kind="stable")
    i = 0
    n = len(order)
    while i < n:
        j = i + 1
        width = counts[order[i]]
        while j < n and max(width, counts[order[j]]) * (j - i + 1) <= MAX_CELLS:
            width = max(width, counts[order[j]])
            j += 1
        group = np.sort(order[i:j])
        if j - i == n:
            rows_sel = np.arange(len(fa))
        else:
            sel = np.zeros(len(accs), dtype=bool)
            sel[group] = True
            rows_sel = np.flatnonzero(np.repeat(sel, counts))
        yield rows_sel, accs[group]
        i = j


def _choose(fa, accs, dP, dN, P, N, slack, tol, rounds, m, coarse=8, coarse_gap=1e6):
    """For the flippable rows of the accounts ``accs`` (rows sorted by account ``fa``),
    which to move from lo to hi. Dense: one line per account, one column per row."""
    n = len(accs)
    line = np.searchsorted(accs, fa)
    col = seg_rank(fa)
    K = int(col.max()) + 1
    DP = np.zeros((n, K))
    DN = np.zeros((n, K))
    valid = np.zeros((n, K), dtype=bool)
    DP[line, col] = dP
    DN[line, col] = dN
    valid[line, col] = True
    ar = np.arange(n)
    lim = (slack + tol)[:, None]

    # 1. greedy passes in several orders (the most underweight removed per overweight added
    # first, the largest underweight first, the largest move first), skipping a move that would break
    # the cash floor or not improve; keep the best per account
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(DP > 0, DN / DP, np.inf)
    size = DP + DN
    keys = (
        np.where(valid, -ratio, np.inf),
        np.where(valid, -DN, np.inf),
        np.where(valid, -size, np.inf),
    )
    Pbase, Nbase = P, N
    best_f = np.full(n, np.inf)
    flipped = np.zeros((n, K), dtype=bool)
    limv = lim[:, 0]
    for key in keys:
        order = np.argsort(key, axis=1, kind="stable")
        # columns as contiguous rows: one pass per position
        sP = np.ascontiguousarray(np.take_along_axis(DP, order, 1).T)
        sN = np.ascontiguousarray(np.take_along_axis(DN, order, 1).T)
        sv = np.ascontiguousarray(np.take_along_axis(valid, order, 1).T)
        Pc, Nc = Pbase.copy(), Nbase.copy()
        fc = np.maximum(Pc, Nc)
        taken_t = np.zeros((K, n), dtype=bool)
        for k in range(K):
            nP = Pc + sP[k]
            nN = Nc - sN[k]
            nf = np.maximum(nP, nN)
            ok = sv[k] & (nP - nN <= limv) & (nf < fc - tol)
            np.copyto(Pc, nP, where=ok)
            np.copyto(Nc, nN, where=ok)
            np.copyto(fc, nf, where=ok)
            taken_t[k] = ok
        taken = taken_t.T
        fc = np.where(Pc - Nc <= lim[:, 0], fc, np.inf)
        win = fc < best_f - tol
        if win.any():
            fl = np.zeros((n, K), dtype=bool)
            np.put_along_axis(fl, order, taken, 1)
            flipped[win] = fl[win]
            best_f = np.where(win, fc, best_f)
    # 1b. every subset of the few largest moves, each completed by the best prefix of
    # the others in ratio order (a near-exact knapsack where lots are coarse)
    # (only where the greedy is not already at the LP bound, and only over the moves large
    # enough to matter: larger than the gap to that bound)
    if coarse > 0 and K > 1:
        bound = _lp_bound(DP, DN, valid, ratio, Pbase, Nbase, lim[:, 0])
        with np.errstate(invalid="ignore"):
            gap = np.where(np.isfinite(best_f) & np.isfinite(bound), best_f - bound, 0.0)
        big = (valid & (gap[:, None] < DP + DN)).sum(1)
        want = np.where(gap > tol * coarse_gap, np.minimum(big, coarse), 0)
        want = np.minimum(want, K)
        for c in np.unique(want[want > 1]):
            g = np.flatnonzero(want == c)
            fl, f = _coarse_subsets(
                DP[g], DN[g], valid[g], ratio[g], Pbase[g], Nbase[g], lim[g, 0], int(c)
            )
            win = f < best_f[g] - tol[g]
            flipped[g[win]] = fl[win]
            best_f[g[win]] = f[win]
    P = Pbase + (DP * flipped).sum(1)
    N = Nbase - (DN * flipped).sum(1)

    # 2. local search on the accounts that still improve
    live = ar
    m = min(m, K)
    tri = np.triu(np.ones((m, m), dtype=bool), 1)[None]
    for _ in range(rounds):
        if not len(live):
            break
        fl = flipped[live]
        dp, dn, va = DP[live], DN[live], valid[live]
        Pl, Nl, li = P[live], N[live], lim[live]
        tP = np.where(fl, -dp, dp)
        tN = np.where(fl, dn, -dn)
        nP = Pl[:, None] + tP
        nN = Nl[:, None] + tN
        f_any = np.where(va, np.maximum(nP, nN), np.inf)
        f1 = np.where(nP - nN <= li, f_any, np.inf)
        j1 = np.argmin(f1, axis=1)
        al = np.arange(len(live))
        best1 = f1[al, j1]
        cur = np.where(Pl - Nl <= li[:, 0], np.maximum(Pl, Nl), np.inf)
        if m > 1:
            if m < K:
                cand = np.argpartition(f_any, m - 1, axis=1)[:, :m]
            else:
                cand = np.broadcast_to(np.arange(K), (len(live), K))
            cP = np.take_along_axis(tP, cand, 1)
            cN = np.take_along_axis(tN, cand, 1)
            cv = np.take_along_axis(va, cand, 1)
            pP = Pl[:, None, None] + cP[:, :, None] + cP[:, None, :]
            pN = Nl[:, None, None] + cN[:, :, None] + cN[:, None, :]
            ok = cv[:, :, None] & cv[:, None, :] & tri & (pP - pN <= li[:, :, None])
            f2 = np.where(ok, np.maximum(pP, pN), np.inf).reshape(len(live), m * m)
            j2 = np.argmin(f2, axis=1)
            best2 = f2[al, j2]
            pa = cand[al, j2 // m]
            pb = cand[al, j2 % m]
        else:
            best2 = np.full(len(live), np.inf)
            pa = pb = j1
        tl = tol[live]
        use2 = (best2 < best1 - tl) & (best2 < cur - tl)
        use1 = ~use2 & (best1 < cur - tl)
        if not (use1.any() or use2.any()):
            break
        i1 = live[use1]
        flipped[i1, j1[use1]] ^= True
        i2 = live[use2]
        flipped[i2, pa[use2]] ^= True
        flipped[i2, pb[use2]] ^= True
        live = np.sort(np.concatenate([i1, i2]))
        P[live] = Pbase[live] + (DP[live] * flipped[live]).sum(1)
        N[live] = Nbase[live] - (DN[live] * flipped[live]).sum(1)
    return flipped[line, col]


def _lp_bound(DP, DN, valid, ratio, P0, N0, lim):
    """The optimum of the relaxation where moves may be taken in part (a lower bound)."""
    n, K = DP.shape
    order = np.argsort(np.where(valid, -ratio, np.inf), axis=1, kind="stable")
    sv = np.take_along_axis(valid, order, 1)
    sP = np.where(sv, np.take_along_axis(DP, order, 1), 0.0)
    sN = np.where(sv, np.take_along_axis(DN, order, 1), 0.0)
    z = np.zeros((n, 1))
    cP = np.concatenate([z, np.cumsum(sP, axis=1)], axis=1)
    cN = np.concatenate([z, np.cumsum(sN, axis=1)], axis=1)
    S = (P0 - N0)[:, None] + cP + cN  # non-decreasing
    goal = np.minimum(0.0, lim)[:, None]
    k = np.clip((goal >= S).sum(1) - 1, 0, K)  # last prefix not beyond the goal
    ar = np.arange(n)
    k1 = np.minimum(k + 1, K)
    step = S[ar, k1] - S[ar, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(step > 0, (goal[:, 0] - S[ar, k]) / step, 0.0)
    alpha = np.clip(alpha, 0.0, 1.0)
    P = P0 + cP[ar, k] + alpha * (cP[ar, k1] - cP[ar, k])
    N = N0 - cN[ar, k] - alpha * (cN[ar, k1] - cN[ar, k])
    f = np.maximum(P, N)
    return np.where(lim + 1e-9 >= P0 - N0, f, np.inf)


def _coarse_subsets(DP, DN, valid, ratio, P0, N0, lim, C):
    """Try every subset of each account's C largest moves, completing each with the best
    prefix of the other moves in the order of dN / dP. Returns (flipped, objective)."""
    n, K = DP.shape
    size = np.where(valid, DP + DN, -1.0)
    cidx = np.argpartition(-size, C - 1, axis=1)[:, :C]
    cvalid = np.take_along_axis(valid, cidx, 1)
    cP = np.where(cvalid, np.take_along_axis(DP, cidx, 1), 0.0)
    cN = np.where(cvalid, np.take_along_axis(DN, cidx, 1), 0.0)
    is_coarse = np.zeros((n, K), dtype=bool)
    np.put_along_axis(is_coarse, cidx, True, 1)
    fine = valid & ~is_coarse
    order = np.argsort(np.where(fine, -ratio, np.inf), axis=1, kind="stable")
    sf = np.take_along_axis(fine, order, 1)
    fP = np.where(sf, np.take_along_axis(DP, order, 1), 0.0)
    fN = np.where(sf, np.take_along_axis(DN, order, 1), 0.0)
    z = np.zeros((n, 1))
    cPf = np.concatenate([z, np.cumsum(fP, axis=1)], axis=1)  # n x (K+1)
    cNf = np.concatenate([z, np.cumsum(fN, axis=1)], axis=1)
    cv = cPf + cNf
    bits = ((np.arange(2**C)[:, None] >> np.arange(C)[None, :]) & 1).astype(float)  # 2^C x C
    Ps = P0[:, None] + cP @ bits.T  # n x 2^C
    Ns = N0[:, None] - cN @ bits.T
    # the fine prefix: k_c = first k where the overweights catch up with the underweights,
    # k_b = the longest prefix the cash allows
    W = K + 1
    span = float(cv[:, -1].max()) + 1.0
    base = np.arange(n)[:, None] * W
    offs = np.arange(n)[:, None] * (span * 4.0)
    flat = (cv + offs).ravel()
    gap = Ns - Ps
    q = np.minimum(np.maximum(gap, -1.0), span)
    q += offs
    kc = np.searchsorted(flat, q.ravel(), side="left").reshape(n, -1)
    q = np.minimum(np.maximum(gap + lim[:, None], -1.0), span)
    q += offs
    kb = np.searchsorted(flat, q.ravel(), side="right").reshape(n, -1) - 1
    feasible = kb >= base
    kb = np.maximum(kb, base)
    kc = np.minimum(np.maximum(kc, base), base + K)
    kP, kN, kv = cPf.ravel(), cNf.ravel(), cv.ravel()
    lim_s = lim[:, None] + 1e-9 + gap
    best = np.full(Ps.shape, np.inf)
    bestk = np.zeros(Ps.shape, dtype=np.int64)
    for k in (np.minimum(kc, kb), np.minimum(np.maximum(kc - 1, base), kb)):
        f = np.maximum(Ps + kP[k], Ns - kN[k])
        f[~(feasible & (kv[k] <= lim_s))] = np.inf
        w = f < best
        best[w] = f[w]
        bestk[w] = k[w]
    bestk -= base
    j = np.argmin(best, axis=1)
    ar = np.arange(n)
    f = best[ar, j]
    k = bestk[ar, j]
    flipped = np.zeros((n, K), dtype=bool)
    chosen = bits[j].astype(bool) & cvalid
    np.put_along_axis(flipped, cidx, chosen, 1)
    prefix = (np.arange(K)[None, :] < k[:, None]) & sf
    fl2 = np.zeros((n, K), dtype=bool)
    np.put_along_axis(fl2, order, prefix, 1)
    return flipped | fl2, f


def _raise_cash(acc, n_acc, p, h, target, q, qmin, step, minq, closeout, short, tol):
    """Lower trades until each account's cash shortfall is covered: first overweight
    positions down to their target, then buys down to nothing, then any position."""
    q = q.copy()
    floor_q = np.ceil(qmin / step - EPS) * step
    floor_q = np.where(closeout, np.minimum(floor_q, -h), floor_q)
    for stage in (0, 0, 1, 1, 2, 2):
        need = short[acc] > 0
        if not need.any():
            break
        d = (h + q) * p - target
        if stage == 0:
            low = np.maximum(floor_q, q - np.floor(np.maximum(d, 0) / p / step + EPS) * step)
        elif stage == 1:
            low = np.where(q > 0, np.maximum(floor_q, 0.0), q)
        else:
            low = np.where(np.isfinite(floor_q), floor_q, q - short[acc] / p - step)
        room = np.where(need, np.maximum(q - low, 0.0), 0.0) * p
        cand = np.flatnonzero(room > 0)
        if not len(cand):
            continue
        order = np.lexsort((-d[cand], acc[cand]))
        idx = cand[order]
        a = acc[idx]
        before = seg_cumsum(room[idx], a) - room[idx]
        amount = np.minimum(room[idx], short[a] - before)
        go = amount > 0
        idx, a, amount = idx[go], a[go], amount[go]
        dq = np.ceil(amount / p[idx] / step[idx] - EPS) * step[idx]
        newq = np.maximum(q[idx] - dq, low[idx])
        # keep every trade zero or at least the minimum size
        small_buy = (newq > 0) & (newq < minq[idx] - EPS)
        newq = np.where(small_buy, 0.0, newq)
        small = (newq < 0) & (-newq < minq[idx] - EPS)
        bump = -np.ceil(minq[idx] / step[idx] - EPS) * step[idx]
        bump = np.where(closeout[idx] & (bump < -h[idx]), -h[idx], bump)
        newq = np.where(small, np.maximum(bump, floor_q[idx]), newq)
        newq = np.where((newq < 0) & (-newq < minq[idx] - EPS), q[idx], newq)
        raised = np.bincount(a, weights=(q[idx] - newq) * p[idx], minlength=n_acc)
        q[idx] = newq
        short = np.maximum(short - raised, 0.0)
        short[short <= tol] = 0.0
    return q, short
