"""PTDF time: flexopt's ``TransmissionModel.ptdf`` vs pandapower's ``makePTDF``, same run.

    python -m benchmarks.ptdf [--repeats 7] [--quick]

On case118, case1354pegase (six phase-shifting transformers) and case3120sp. Both compute
the PTDF (T3 in ``models/transmission.md``) of the same network, the energized case that
``rundcpp`` solves (pandapower's own conversion, :func:`flexopt.grid.ppc.pandapower_case`):
flexopt from its model's arrays (a fresh :class:`~flexopt.grid.TransmissionModel` per call,
so that nothing is cached), pandapower's ``makePTDF`` from that case's ``ppci`` bus and
branch matrices (``makeBdc`` included). pandapower runs in up to four configurations: its
default dense solve (skipped above 2 000 buses: minutes) and its sparse formulation
(``using_sparse_solver=True``: one ``factorized`` LU, blocks of 32 rows of ``B_f`` above
2 000 branches, one ``spsolve`` below), each as called and under one BLAS thread (as
flexopt's PTDF runs: with two threads on a busy machine pandapower's solves can be 10×
slower).
"× fastest" is against the fastest of these pandapower timings. The calls are interleaved
(one of each per round) and each time is the median of ``--repeats`` rounds after a warm-up.
The ratio is flexopt over pandapower: < 1 is faster. Agreement: the largest absolute
difference between the two matrices. The previous form of flexopt's PTDF (COLAMD ordering,
right-hand sides sliced from a sparse matrix in blocks of 8) is timed alongside as the
baseline of the current one. End to end: ``flexopt.grid.ptdf(net)`` (conversion,
tables, model, PTDF, DataFrame) against pandapower's ``to_ppc`` + ``makePTDF``.

Writes ``results/ptdf.csv`` and prints a Markdown table for ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from benchmarks._common import machine, write_csv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp
    import pandapower.networks as pn
    from pandapower.converter.pypower.to_ppc import to_ppc
    from pandapower.pypower.makePTDF import makePTDF

import flexopt as fx
from flexopt.grid.ppc import idx_brch, pandapower_case
from flexopt.grid.transmission import TransmissionModel

CASES = ("case118", "case1354pegase", "case3120sp")
#: pandapower's dense makePTDF is cubic in the buses: skipped beyond this many
DENSE_MAX_BUS = 2000


def _previous_ptdf(model: TransmissionModel) -> np.ndarray:
    """(T3) in its previous form, kept as the baseline of the current one: SuperLU with its
    default ordering (COLAMD), right-hand sides sliced from a sparse ``B_fᵀ`` in blocks of 8,
    BLAS threads as configured."""
    n, nl = model.n_bus, model.n_branch
    rows = np.arange(nl)
    incidence = sp.csr_matrix(
        (
            np.r_[np.ones(nl), -np.ones(nl)],
            (np.r_[rows, rows], np.r_[model.from_idx, model.to_idx]),
        ),
        shape=(nl, n),
    )
    bf = sp.diags(1.0 / (model.x_pu * model.tap)) @ incidence
    bbus = (incidence.T @ bf).tocsc()
    keep = np.flatnonzero(np.arange(n) != model.slack_idx)
    lu = spla.splu(bbus[keep][:, keep].tocsc())
    rhs = bf[:, keep].T.tocsc()
    phi = np.zeros((nl, n))
    for lo in range(0, nl, 8):
        hi = min(lo + 8, nl)
        phi[lo:hi, keep] = lu.solve(rhs[:, lo:hi].toarray()).T
    return phi


def _medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, the calls interleaved round by round."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: float(np.median(v)) for k, v in times.items()}


def _one_thread(fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        with threadpool_limits(1, user_api="blas"):
            return fn()

    return call


def _case(name: str, repeats: int) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = getattr(pn, name)()
        case = pandapower_case(net, dc=True)
    model = fx.grid.transmission_from_pandapower(net)
    bus, branch, base = case.bus, case.branch, case.base_mva
    # the model's buses and branches are the case's, in the case's order
    if not np.array_equal(model.bus.to_numpy(), case.label) or model.n_branch != len(branch):
        raise RuntimeError(f"{name}: the model's buses or branches are not the case's")

    def flexopt_ptdf() -> np.ndarray:
        return dataclasses.replace(model).ptdf  # a fresh model: no cached PTDF

    def sparse() -> np.ndarray:
        return makePTDF(base, bus, branch, using_sparse_solver=True)

    def quiet(fn: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn()

        return call

    fns: dict[str, Callable[[], object]] = {
        "flexopt": flexopt_ptdf,
        "previous": lambda: _previous_ptdf(model),
        "sparse": sparse,
        "sparse_1thread": _one_thread(sparse),
        "flexopt_e2e": quiet(lambda: fx.grid.ptdf(net)),
        "pandapower_e2e": quiet(
            lambda: makePTDF(
                (ppci := to_ppc(net, init="flat"))["baseMVA"],
                ppci["bus"],
                ppci["branch"],
                using_sparse_solver=True,
            )
        ),
    }
    if bus.shape[0] <= DENSE_MAX_BUS:
        fns["dense"] = lambda: makePTDF(base, bus, branch)
        fns["dense_1thread"] = _one_thread(fns["dense"])
    t = _medians(fns, repeats)
    phi = flexopt_ptdf()
    diff = float(np.abs(phi - sparse()).max())
    diff_previous = float(np.abs(phi - _previous_ptdf(model)).max())
    if "dense" in fns:
        diff = max(diff, float(np.abs(phi - makePTDF(base, bus, branch)).max()))
    best_pp = min(t[k] for k in ("sparse", "sparse_1thread", "dense", "dense_1thread") if k in t)
    return {
        "case": name,
        "buses": model.n_bus,
        "branches": model.n_branch,
        "phase_shifters": int(np.count_nonzero(case.col(idx_brch.SHIFT))),
        "flexopt_s": t["flexopt"],
        "flexopt_previous_s": t["previous"],
        "makeptdf_sparse_s": t["sparse"],
        "makeptdf_sparse_1thread_s": t["sparse_1thread"],
        "makeptdf_dense_s": t.get("dense", np.nan),
        "makeptdf_dense_1thread_s": t.get("dense_1thread", np.nan),
        "ratio_vs_sparse": t["flexopt"] / t["sparse"],
        "ratio_vs_fastest": t["flexopt"] / best_pp,
        "previous_ratio_vs_sparse": t["previous"] / t["sparse"],
        "previous_ratio_vs_fastest": t["previous"] / best_pp,
        "max_abs_diff": diff,
        "max_abs_diff_vs_previous": diff_previous,
        "flexopt_end_to_end_s": t["flexopt_e2e"],
        "pandapower_end_to_end_s": t["pandapower_e2e"],
        "repeats": repeats,
    }


def _ms(seconds: float) -> str:
    return "—" if not np.isfinite(seconds) else f"{seconds * 1e3:,.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per case (median)")
    ap.add_argument("--quick", action="store_true", help="3 rounds (smoke test)")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    rows = [_case(name, repeats) for name in CASES]
    df = pd.DataFrame(rows)
    path = write_csv(df, "ptdf")
    print(f"# PTDF, {machine()}, pandapower {pp.__version__}, median of {repeats} rounds\n")
    print(
        "| case | buses | branches | shifters | flexopt (ms) | previous form (ms) "
        "| makePTDF sparse (ms) "
        "| sparse, 1 BLAS thread (ms) | dense (ms) | dense, 1 BLAS thread (ms) | × sparse "
        "| × fastest | previous: × sparse / × fastest | max abs diff "
        "| end to end: flexopt / pandapower (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['buses']:,} | {r['branches']:,} | {r['phase_shifters']} "
            f"| {_ms(r['flexopt_s'])} | {_ms(r['flexopt_previous_s'])} "
            f"| {_ms(r['makeptdf_sparse_s'])} "
            f"| {_ms(r['makeptdf_sparse_1thread_s'])} | {_ms(r['makeptdf_dense_s'])} "
            f"| {_ms(r['makeptdf_dense_1thread_s'])} "
            f"| {r['ratio_vs_sparse']:.2g} | {r['ratio_vs_fastest']:.2g} "
            f"| {r['previous_ratio_vs_sparse']:.2g} / {r['previous_ratio_vs_fastest']:.2g} "
            f"| {r['max_abs_diff']:.1e} "
            f"| {_ms(r['flexopt_end_to_end_s'])} / {_ms(r['pandapower_end_to_end_s'])} |"
        )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
