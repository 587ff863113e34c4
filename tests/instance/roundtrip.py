"""Field-by-field equality of two instances (every table and every field, floats exact)."""

from __future__ import annotations

import pandas as pd

from flexopt.instance import Instance


def _frames(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series, what: str) -> None:
    a, b = a.copy(), b.copy()
    a.attrs, b.attrs = {}, {}
    try:
        if isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, check_exact=True)
        else:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError as err:
        raise AssertionError(f"{what}: {err}") from None


def assert_instances_equal(a: Instance, b: Instance) -> None:
    """Every field of ``a`` and ``b`` equal, except ``path`` (where each was read from)."""
    for f in ("name", "description", "hours", "dt_h"):
        assert getattr(a, f) == getattr(b, f), f
    ta, tb = a.transmission, b.transmission
    for f in ("buses", "branches", "generators"):
        _frames(getattr(ta, f), getattr(tb, f), f"transmission.{f}")
    assert (ta.slack_bus, ta.base_mva) == (tb.slack_bus, tb.base_mva)
    sa, sb = a.scenario, b.scenario
    _frames(sa.load_profile, sb.load_profile, "scenario.load_profile")
    _frames(sa.load_increase, sb.load_increase, "scenario.load_increase")
    for f in ("balancing", "risk_quantile", "correlation"):
        assert getattr(sa, f) == getattr(sb, f), f"scenario.{f}"
    assert a.market == b.market or vars(a.market) == vars(b.market)
    assert [d.id for d in a.dsos] == [d.id for d in b.dsos]
    for da, db in zip(a.dsos, b.dsos, strict=True):
        assert (da.bus, da.n_feeders) == (db.bus, db.n_feeders), da.id
        fa, fb = da.feeder, db.feeder
        assert (fa.name, fa.vn_kv, fa.root) == (fb.name, fb.vn_kv, fb.root), da.id
        _frames(fa.branches, fb.branches, f"{da.id} feeder")
        _frames(da.prosumers, db.prosumers, f"{da.id} prosumers")
        _frames(da.baseline_mw, db.baseline_mw, f"{da.id} baseline")
