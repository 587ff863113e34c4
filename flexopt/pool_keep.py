"""What a process pool's one worker keeps between its tasks (``flexopt.executors``): large
objects it received or made once travel by a key after.

A market run hands each DSO's context to three stages (made by S4, read by S5–S6 and S8) and
each offer to two (made by S5–S6, read by S8). Pickled whole, a context of 10 prosumers is
~95 kB and costs ~0.6 ms to pickle here and ~1.3 ms to unpickle in the worker: as much as S8's
work on it (~4 ms a task, with the offer's ~1 ms). A class opts in by returning
:func:`reduce_kept` from its ``__reduce_ex__``: inside :meth:`Keeper.dumps` its objects are
pickled whole once (in a task sent, or in a result the worker returns) and by their key
after; anywhere else (another executor, ``copy``, a user's ``pickle.dumps``) they pickle as
usual. Both processes keep the objects for the executor's block (an epoch): the pool's owner
forgets them when the block ends (:meth:`Keeper.reset`) and has the worker forget its own
(:func:`forget`); keys carry their epoch, so nothing of a block is mistaken for the next's.

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

__all__ = ["Keeper", "Key", "each_kept", "forget", "reduce_kept"]

A = TypeVar("A")
R = TypeVar("R")
Key = tuple[str, int, int]  # (side, epoch, serial number)

#: Per thread: the keeper pickling (``sending``, with the keys it sends whole) or
#: unpickling (``loading``) now, if any.
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
        self.epoch = 1
        self.count = itertools.count()  # never restarts: a key is never made twice
        self._clear()

    def _clear(self) -> None:
        self.keys: dict[int, Key] = {}  # id(obj) → key, while ``held`` keeps obj alive
        self.held: dict[Key, Any] = {}
        self.shared: set[Key] = set()  # keys the other process holds

    def reset(self) -> None:
        """A new epoch: forget every kept object (the pool's owner, when a block ends)."""
        with self.lock:
            self.epoch += 1
            self._clear()

    def enter(self, epoch: int) -> None:
        """A chunk of ``epoch`` arrived (the worker): a later epoch than this one's starts
        afresh; an earlier one's chunk (a stopped call's, sent late) changes nothing."""
        with self.lock:
            if epoch > self.epoch:
                self.epoch = epoch
                self._clear()

    def forget(self) -> None:
        """Drop the kept objects, staying in this epoch (an idle worker's memory)."""
        with self.lock:
            self._clear()

    def dumps(self, obj: Any) -> tuple[bytes, set[Key], int]:
        """``obj`` pickled, the keys it carries whole (the other process's once it has loaded
        them: :meth:`confirm`), and the epoch they belong to."""
        sent: set[Key] = set()
        epoch = self.epoch
        before = getattr(_active, "sending", None), getattr(_active, "sent", None)
        _active.sending, _active.sent = self, sent
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), sent, epoch
        finally:
            _active.sending, _active.sent = before

    def loads(self, data: bytes) -> Any:
        return _loads(data, self)

    def confirm(self, keys: set[Key]) -> None:
        """The other process loaded these keys: later pickles send them by key (a key of an
        earlier epoch, confirmed late, is not held any more and is ignored)."""
        with self.lock:
            self.shared.update(k for k in keys if k in self.held)

    def key(self, obj: Any) -> tuple[Key, bool]:
        """``obj``'s key (made on first use), and whether the other process holds it."""
        with self.lock:
            key = self.keys.get(id(obj))
            if key is None:
                key = (self.side, self.epoch, next(self.count))
                self.keys[id(obj)] = key
                self.held[key] = obj
            return key, key in self.shared

    def keep(self, key: Key, data: bytes) -> Any:
        """The object the other process sent whole under ``key``: the one held already (its
        second arrival), else ``data`` unpickled and kept — if ``key`` is of this epoch."""
        with self.lock:
            if key in self.held:
                return self.held[key]
        obj = _loads(data, None)
        with self.lock:
            if key[1] != self.epoch:  # a late result of an ended block: used, not kept
                return obj
            if key in self.held:  # arrived twice at once
                return self.held[key]
            self.keys[id(obj)] = key
            self.held[key] = obj
            self.shared.add(key)  # the other process sent it: it holds it
            return obj


def reduce_kept(obj: Any, protocol: int) -> Any:
    """``obj.__reduce_ex__(protocol)`` for a class whose objects a worker keeps: by key where
    the other process holds it, whole (and kept) where it does not, as usual outside
    :meth:`Keeper.dumps`."""
    keeper: Keeper | None = getattr(_active, "sending", None)
    if keeper is None:
        return object.__reduce_ex__(obj, protocol)
    key, shared = keeper.key(obj)
    if shared:
        return _held, (key,)
    _active.sent.add(key)
    _active.sending = None  # the object itself, as usual, inside
    try:
        data = pickle.dumps(obj, protocol=protocol)
    finally:
        _active.sending = keeper
    return _whole, (key, data)


def _loads(data: bytes, keeper: Keeper | None) -> Any:
    """Unpickled with ``keeper`` loading (``None``: what a whole object holds came whole
    with it); the thread's previous one restored after."""
    before = getattr(_active, "loading", None)
    _active.loading = keeper
    try:
        return pickle.loads(data)
    finally:
        _active.loading = before


def _held(key: Key) -> Any:
    keeper: Keeper | None = getattr(_active, "loading", None)
    if keeper is not None:
        with keeper.lock:
            if key in keeper.held:
                return keeper.held[key]
    raise pickle.UnpicklingError(f"a kept object ({key}) unpickled where it is not held")


def _whole(key: Key, data: bytes) -> Any:
    keeper: Keeper | None = getattr(_active, "loading", None)
    return _loads(data, None) if keeper is None else keeper.keep(key, data)


_WORKER = Keeper("w")


def each_kept(fn: Callable[[A], R], payload: bytes, epoch: int) -> tuple[bytes, set[Key], int]:
    """A worker's chunk sent through a :class:`Keeper`: the items unpickled (a chunk of a new
    epoch, a new executor block: the last block's objects are forgotten first), run in
    order, and the results pickled back through it."""
    _WORKER.enter(epoch)
    items = _WORKER.loads(payload)
    return _WORKER.dumps([fn(x) for x in items])


def forget() -> None:
    """The worker drops what it keeps (submitted when the executor's block ends, so that an
    idle pool holds no run's contexts)."""
    _WORKER.forget()
