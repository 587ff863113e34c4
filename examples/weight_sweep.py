"""Sweep the DSO objective's weight ``w`` (``dcp_weight``: losses vs price) and draw the
trade-off between the loss objective ``f_loss`` and the price objective ``f_price``.

    python examples/weight_sweep.py [--weights 0,0.25,0.5,0.75,1] [--out DIR] [--fast]

``fx.compare`` runs ``mlf`` and ``wca`` at each weight; ``fx.plot.tradeoff`` draws one line per
method through its runs (``tradeoff.png``, also written by ``flexopt compare``). ``--fast``
sweeps three weights with a short WCA run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import flexopt as fx
from flexopt.report.compare_tables import dcp_sums

INSTANCE = Path(__file__).resolve().parents[1] / "instances" / "rts24-3dso"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,1", help="comma-separated, in [0, 1]")
    ap.add_argument("--out", type=Path, help="the comparison folder (default: a temporary one)")
    ap.add_argument("--fast", action="store_true", help="three weights, a short WCA run")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="flexopt-sweep-")) / "sweep"
    weights = [0.0, 0.5, 1.0] if args.fast else [float(w) for w in args.weights.split(",")]
    wca = {"wca_iter": 5, "wca_pop": 10} if args.fast else {"wca_iter": 200}

    cmp = fx.compare(
        INSTANCE, ["mlf", "wca"], set={"dcp_weight": weights}, options=wca, out=out, progress=False
    )
    for s in cmp.summaries:
        f_loss, f_price = dcp_sums(s)
        w = s["options"]["dcp_weight"]
        print(f"{s['method']:4} w={w:<5g} f_loss {f_loss:9.3f} MWh  f_price {f_price:10.2f} €")
    fig = fx.plot.tradeoff(cmp.summaries, by="dcp_weight")
    path = cmp.out / "tradeoff_example.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path} (and {cmp.out / 'tradeoff.png'} by fx.compare)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
