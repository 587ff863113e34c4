"""What a process pool's one worker keeps between its tasks (``flexopt.executors``): large
objects it received or made once travel by a key after.

A market run hands each DSO's context to three stages (made by S4, read by S5–S6 and S8) and
each offer to two (made by S5–S6, read by S8). Pickled whole, a context of 10 prosumers is
~95 kB and costs ~0.6 ms to pickle here and ~1.3 ms to unpickle in the worker: as much as S8's
work on it (~4 ms a task, with the offer's ~1 ms). A class opts in by returning
:func:`reduce_kept` from its ``__reduce_ex__``: inside :meth:`Keeper.dumps` its objects are
pickled whole once (in a task sent, or in a result the worker returns) and by their key
after; anywhere else (another executor, a user's ``pickle.dumps``) they pickle as usual.
Both processes keep the objects until the pool's block ends (:meth:`Keeper.reset`; the
worker forgets its own when the next block's first chunk arrives).

Only for a pool of one worker: with several, a chunk goes to whichever worker is free, which
may not hold the key. The objects must not change once sent (a market's contexts and offers
are frozen dataclasses, never modified after they are made).
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Keeper", "each_kept", "reduce_kept"]

A = TypeVar("A")
R = TypeVar("R")
Key = tuple[str, int]

#: The keeper pickling or unpickling in this thread, if any.
_active = threading.local()


class Keeper:
    """One process's side of the kept objects: :meth:`dumps` sends by key what the other
    process holds; :meth:`loads` resolves keys and keeps what came whole.

    Parameters
    ----------
    side : str
        Names this process's keys (``"m"`` the pool's owner, ``"w"`` its worker), so that
        the two never make the same key.
    """

    def __init__(self, side: str) -> None:
        self.side = side
        self.lock = threading.Lock()
        self.epoch = 0
        self.reset()

    def reset(self) -> None:
        """Forget every kept object (the other process forgets at the next epoch)."""
        with self.lock:
            self.epoch += 1
            self.keys: dict[int, Key] = {}  # id(obj) → key, while ``held`` keeps obj alive
            self.held: dict[Key, Any] = {}
            self.shared: set[Key] = set()  # keys the other process holds
            self.count = itertools.count()

    def dumps(self, obj: Any) -> tuple[bytes, set[Key]]:
        """``obj`` pickled, and the keys it carries whole (the other process's once it has
        loaded them: :meth:`confirm`)."""
        sent: set[Key] = set()
        _active.keeper, _active.sent = self, sent
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), sent
        finally:
            _active.keeper = None

    def loads(self, data: bytes) -> Any:
        _active.keeper = self
        try:
            return pickle.loads(data)
        finally:
            _active.keeper = None

    def confirm(self, keys: set[Key]) -> None:
        """The other process loaded these keys: later pickles send them by key."""
        with self.lock:
            self.shared.update(k for k in keys if k in self.held)

    def key(self, obj: Any) -> tuple[Key, bool]:
        """``obj``'s key (made on first use), and whether the other process holds it."""
        with self.lock:
            key = self.keys.get(id(obj))
            if key is None:
                key = (self.side, next(self.count))
                self.keys[id(obj)] = key
                self.held[key] = obj
            return key, key in self.shared

    def keep(self, key: Key, obj: Any) -> None:
        """``obj`` came whole from the other process, which holds it under ``key``."""
        with self.lock:
            self.keys[id(obj)] = key
            self.held[key] = obj
            self.shared.add(key)


def reduce_kept(obj: Any, protocol: int) -> Any:
    """``obj.__reduce_ex__(protocol)`` for a class whose objects a worker keeps: by key where
    the other process holds it, whole (and kept) where it does not, as usual outside
    :meth:`Keeper.dumps`."""
    keeper: Keeper | None = getattr(_active, "keeper", None)
    if keeper is None:
        return object.__reduce_ex__(obj, protocol)
    key, shared = keeper.key(obj)
    if shared:
        return _held, (key,)
    _active.sent.add(key)
    _active.keeper = None  # the object itself, as usual, inside
    try:
        data = pickle.dumps(obj, protocol=protocol)
    finally:
        _active.keeper = keeper
    return _whole, (key, data)


def _held(key: Key) -> Any:
    keeper: Keeper | None = getattr(_active, "keeper", None)
    if keeper is None or key not in keeper.held:
        raise pickle.UnpicklingError(f"a kept object ({key}) unpickled where it is not held")
    return keeper.held[key]


def _whole(key: Key, data: bytes) -> Any:
    keeper: Keeper | None = getattr(_active, "keeper", None)
    obj = pickle.loads(data)  # with no keeper active: nested kept objects came whole
    if keeper is not None:
        keeper.keep(key, obj)
    return obj


_WORKER = Keeper("w")


def each_kept(fn: Callable[[A], R], payload: bytes, epoch: int) -> tuple[bytes, set[Key]]:
    """A worker's chunk sent through a :class:`Keeper`: the items unpickled (a new ``epoch``
    is a new pool block: the last one's objects are forgotten first), run in order, and the
    results pickled back through it."""
    if _WORKER.epoch != epoch:
        _WORKER.reset()
        _WORKER.epoch = epoch
    items = _WORKER.loads(payload)
    return _WORKER.dumps([fn(x) for x in items])
