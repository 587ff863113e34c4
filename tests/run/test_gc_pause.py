"""The cyclic collector during a run leaves what was alive before alone, and only then."""

from __future__ import annotations

import gc

import pytest

from flexopt.run.gc_pause import frozen_before


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_before_are_frozen_for_the_block_only():
    before = [[]]
    with frozen_before():
        assert gc.get_freeze_count() > 0
        made = [[]]
        collected = gc.get_objects()  # what the collector traverses
        assert not any(o is before for o in collected)
        assert any(o is made for o in collected)
    assert gc.get_freeze_count() == 0
    assert any(o is before for o in gc.get_objects())


def test_nested_blocks_unfreeze_when_the_outer_one_ends():
    with frozen_before():
        frozen = gc.get_freeze_count()
        with frozen_before():
            assert gc.get_freeze_count() == frozen  # no second freeze
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_a_callers_own_freeze_is_left_alone():
    gc.freeze()
    mine = gc.get_freeze_count()
    with frozen_before():
        assert gc.get_freeze_count() == mine
    assert gc.get_freeze_count() == mine


def test_an_exception_still_unfreezes():
    with pytest.raises(RuntimeError), frozen_before():
        raise RuntimeError("stage failed")
    assert gc.get_freeze_count() == 0


def test_a_run_leaves_the_collector_as_it_found_it(rts):
    import flexopt as fx

    fx.run_market(rts, "none", seed=0)
    assert gc.get_freeze_count() == 0
