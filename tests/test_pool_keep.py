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

from flexopt.executors import executor
from flexopt.pool_keep import Keeper, each_kept, reduce_kept


@dataclass(frozen=True, eq=False)
class Big:
    values: np.ndarray

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return reduce_kept(self, int(protocol))


def _big() -> Big:
    return Big(np.arange(20_000.0))


def test_whole_once_then_by_key():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    first, sent = main.dumps([obj, obj])
    assert len(first) > 160_000
    assert len(sent) == 1
    got = worker.loads(first)
    assert got[0] is got[1]
    assert np.array_equal(got[0].values, obj.values)
    main.confirm(sent)
    second, sent2 = main.dumps([obj])
    assert len(second) < 200
    assert not sent2
    assert worker.loads(second)[0] is got[0]


def test_unconfirmed_keys_go_whole_again():
    main = Keeper("m")
    obj = _big()
    first, _ = main.dumps(obj)
    again, _ = main.dumps(obj)  # the chunk that carried it may never have arrived
    assert len(again) == len(first) > 160_000


def test_a_result_the_worker_made_comes_back_by_key():
    main, worker = Keeper("m"), Keeper("w")
    made = _big()
    data, _ = worker.dumps([made])
    here = main.loads(data)[0]
    back, sent = main.dumps([here])
    assert len(back) < 200
    assert not sent
    assert worker.loads(back)[0] is made


def test_outside_a_keeper_pickles_as_usual():
    obj = _big()
    for twin in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), copy.copy(obj)):
        assert type(twin) is Big
        assert np.array_equal(twin.values, obj.values)


def test_a_key_not_held_is_a_clear_error():
    main, worker = Keeper("m"), Keeper("w")
    obj = _big()
    data, sent = main.dumps(obj)
    worker.loads(data)
    main.confirm(sent)
    by_key, _ = main.dumps(obj)
    with pytest.raises(pickle.UnpicklingError, match="not held"):
        Keeper("w").loads(by_key)  # a worker that never received it
    main.reset()  # the pool's block ended: the next block sends it whole again
    assert len(main.dumps(obj)[0]) > 160_000


def _total(b: Big) -> float:
    return float(b.values.sum())


def test_each_kept_forgets_the_last_blocks_objects():
    main = Keeper("m")
    obj = _big()
    data, sent = main.dumps([obj])
    results, _ = each_kept(_total, data, main.epoch)
    assert main.loads(results) == [_total(obj)]
    main.confirm(sent)
    by_key, _ = main.dumps([obj])
    assert main.loads(each_kept(_total, by_key, main.epoch)[0]) == [_total(obj)]
    with pytest.raises(pickle.UnpicklingError, match="not held"):
        each_kept(_total, by_key, main.epoch + 1)  # a new block: the worker forgot it


def _slow_made(i: int) -> tuple[int, Big]:
    time.sleep(0.02)  # so that the worker takes some of the items
    return os.getpid(), Big(np.full(20_000, float(i)))


def _slow_first(b: Big) -> tuple[int, float]:
    time.sleep(0.02)
    return os.getpid(), float(b.values[0])


def test_a_pool_worker_keeps_what_it_made():
    with executor(2) as ex:
        concurrent.futures.wait(ex.ready)  # type: ignore[attr-defined]
        made = ex.map(_slow_made, range(12))
        pids = {pid for pid, _ in made}
        assert len(pids) == 2  # both processes ran some
        back = ex.map(_slow_first, [b for _, b in made])
        assert [v for _, v in back] == [float(i) for i in range(12)]
        keeper = ex.keeper  # type: ignore[attr-defined]
        assert keeper.shared  # the worker's objects are held here by key
    assert not keeper.held  # forgotten when the block ended
