"""Objects a process pool's one worker keeps: whole once, by key after, as usual elsewhere."""

from __future__ import annotations

import concurrent.futures
import copy
import os
import pickle
import time
from dataclasses import dataclass
from typing import Any, SupportsIndex

import numpy as np
import pytest

from flexopt import pool_keep
from flexopt.executors import executor
from flexopt.pool_keep import Keeper, each_kept, reduce_kept


@dataclass(frozen=True, eq=False)
class Big:
    values: np.ndarray

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return reduce_kept(self, int(protocol))


def _big(x: float = 0.0) -> Big:
    return Big(np.full(20_000, x))


WHOLE = 160_000  # bytes: a Big pickled whole
BY_KEY = 200  # bytes: a list of one Big by key


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Keeper:
    """The worker's keeper, fresh, so that this process's stays untouched (workers forked
    later inherit it)."""
    keeper = Keeper("w")
    monkeypatch.setattr(pool_keep, "_WORKER", keeper)
    return keeper


def test_whole_once_then_by_key():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    first, sent, _ = main.dumps([obj, obj])
    assert len(first) > WHOLE  # whole, once for both places
    assert len(first) < 2 * WHOLE
    assert len(sent) == 1
    got = worker.loads(first)
    assert got[0] is got[1]
    assert np.array_equal(got[0].values, obj.values)
    main.confirm(sent)
    second, sent2, _ = main.dumps([obj])
    assert len(second) < BY_KEY
    assert not sent2
    assert worker.loads(second)[0] is got[0]


def test_unconfirmed_keys_go_whole_again_and_arrive_as_the_object_held():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    first, _, _ = main.dumps(obj)
    again, _, _ = main.dumps(obj)  # the chunk that carried it may not have arrived yet
    assert len(again) == len(first)
    assert len(again) > WHOLE
    held = worker.loads(first)
    assert worker.loads(again) is held  # not a second copy under the same key
    assert len(worker.keys) == len(worker.held) == 1


def test_a_result_the_worker_made_comes_back_by_key():
    main, worker = Keeper("m"), Keeper("w")
    made = _big()
    data, _, _ = worker.dumps([made])
    here = main.loads(data)[0]
    assert main.loads(worker.dumps([made])[0])[0] is here  # sent twice: one object here
    back, sent, _ = main.dumps([here])
    assert len(back) < BY_KEY
    assert not sent
    assert worker.loads(back)[0] is made


def test_outside_a_keeper_pickles_as_usual():
    obj = _big(1.0)
    for twin in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), copy.copy(obj)):
        assert type(twin) is Big
        assert np.array_equal(twin.values, obj.values)


def test_a_key_not_held_is_a_clear_error():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    data, sent, _ = main.dumps(obj)
    worker.loads(data)
    main.confirm(sent)
    by_key, _, _ = main.dumps(obj)
    with pytest.raises(pickle.UnpicklingError, match="not held"):
        Keeper("w").loads(by_key)  # a worker that never received it


def test_keys_and_confirmations_stay_in_their_epoch():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    data, sent, epoch = main.dumps(obj)
    main.reset()  # the block ended before the worker returned the chunk
    main.confirm(sent)  # its confirmation, late: nothing of this epoch
    assert not main.shared
    again, sent2, epoch2 = main.dumps(obj)
    assert epoch2 == epoch + 1
    assert len(again) > WHOLE
    assert not sent & sent2  # a key is never made twice
    worker.enter(epoch2)
    late = worker.loads(data)  # a late chunk of the ended block: used, not kept
    assert np.array_equal(late.values, obj.values)
    assert not worker.held
    worker.loads(again)
    worker.enter(epoch)  # an earlier epoch's chunk changes nothing
    assert len(worker.held) == 1
    worker.forget()
    assert not worker.held


def _total(b: Big) -> float:
    return float(b.values.sum())


def test_each_kept_starts_a_new_epoch_afresh(worker: Keeper):
    main = Keeper("m")
    obj = _big(2.0)
    data, sent, epoch = main.dumps([obj])
    assert main.loads(each_kept(_total, data, epoch)[0]) == [_total(obj)]
    main.confirm(sent)
    by_key, _, _ = main.dumps([obj])
    assert main.loads(each_kept(_total, by_key, epoch)[0]) == [_total(obj)]
    with pytest.raises(pickle.UnpicklingError, match="not held"):
        each_kept(_total, by_key, epoch + 1)  # a new block: the worker forgot it
    assert worker.epoch == epoch + 1


def test_a_market_context_and_offer_travel_by_key(rts):
    from flexopt.run.api import run_market

    res = run_market(rts, "mlf", seed=1)
    ctx, offer = res.outcome.contexts[0], res.outcome.offers[0]
    main, worker = Keeper("m"), Keeper("w")
    data, sent, _ = main.dumps([ctx, offer])
    got = worker.loads(data)
    main.confirm(sent)
    again, _, _ = main.dumps([ctx, offer])
    assert len(again) < BY_KEY
    assert [type(x) for x in got] == [type(ctx), type(offer)]
    assert got[0].allocation.equals(ctx.allocation)
    assert got[1].bid.q_mw.equals(offer.bid.q_mw)
    assert worker.loads(again) == got


_MADE: set[int] = set()  # ids of the Bigs this process made (the worker's own, there)


def _made(i: int) -> tuple[int, Big]:
    time.sleep(0.03)  # so that the worker takes some of the items
    b = _big(float(i))
    _MADE.add(id(b))
    return os.getpid(), b


def _first(b: Big) -> tuple[int, float, bool]:
    time.sleep(0.03)
    return os.getpid(), float(b.values[0]), id(b) in _MADE


def test_a_pool_worker_gets_back_what_it_made_by_key():
    with executor(2) as ex:
        concurrent.futures.wait(ex.ready)  # type: ignore[attr-defined]
        made = ex.map(_made, range(16))
        back = ex.map(_first, [b for _, b in made])
    assert [v for _, v, _ in back] == [float(i) for i in range(16)]
    here = os.getpid()
    mine = [
        same
        for (pid_made, _), (pid_back, _, same) in zip(made, back, strict=True)
        if pid_made == pid_back != here
    ]
    assert mine  # the worker ran items of both calls on the same objects ...
    assert all(mine)  # ... and got the very objects it made, not copies
