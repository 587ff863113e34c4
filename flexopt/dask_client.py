"""A Dask client as an executor of DSO tasks (``executor(scheduler=...)``, extra ``dask``):
an order-preserving ``map``, ``as_completed`` and ``start`` over a cluster's workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["CONNECT_TIMEOUT_S", "DaskExecutor"]

#: Seconds to reach a Dask scheduler before giving up with a ``ConnectionError``.
CONNECT_TIMEOUT_S = 5.0

A = TypeVar("A")
R = TypeVar("R")


class DaskExecutor:
    """A client of the Dask scheduler at ``scheduler`` (``tcp://host:8786``), or of a
    two-worker ``LocalCluster`` of its own (``"local"``); :meth:`close` closes both."""

    def __init__(self, scheduler: str) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise ImportError(
                "--scheduler needs the 'dask' extra: pip install 'flexopt[dask]'"
            ) from err
        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
            except (OSError, ValueError) as err:  # TimeoutError is an OSError
                reason = " ".join(str(err).split()) or type(err).__name__
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {scheduler!r} within "
                    f"{CONNECT_TIMEOUT_S:g} s ({reason[:200]})"
                ) from None

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        futures = self.client.map(fn, list(items), pure=False)
        results: list[R] = self.client.gather(futures)
        return results

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        from dask.distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        where = {f.key: i for i, f in enumerate(futures)}
        for f in as_completed(futures):
            yield where[f.key], f.result()

    def start(self, fn: Callable[[A], R], items: Iterable[A]) -> _Gathered[R]:
        """The cluster's workers run the items at once; ``result()`` gathers them."""
        return _Gathered(self.client, self.client.map(fn, list(items), pure=False))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _Gathered(Generic[R]):
    def __init__(self, client: Any, futures: list[Any]) -> None:
        self.client, self.futures = client, futures

    def result(self) -> list[R]:
        results: list[R] = self.client.gather(self.futures)
        return results

    def cancel(self) -> None:
        self.client.cancel(self.futures)
