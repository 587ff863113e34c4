"""Orientation of a radial feeder's branch list from its root (eq. F1 in ``models/feeder.md``)."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np
import pandas as pd

from flexopt.errors import TopologyError

__all__ = ["OrientedTree", "orient_tree", "parallel_groups", "parallel_impedance"]


class OrientedTree(NamedTuple):
    """A spanning tree oriented from its root, branches in breadth-first order.

    Attributes
    ----------
    bus : pandas.Index
        Sorted bus labels; positions ``0..n_bus-1`` index every other array.
    root : int
        Position of the root bus.
    parent, child : numpy.ndarray
        ``[n_bus - 1]`` positions of the upstream and downstream bus of each oriented branch,
        breadth-first from the root (every parent precedes its children).
    branch : numpy.ndarray
        ``[n_bus - 1]`` index into the input branch list of each oriented branch.
    """

    bus: pd.Index
    root: int
    parent: np.ndarray
    child: np.ndarray
    branch: np.ndarray


def orient_tree(
    from_bus: np.ndarray, to_bus: np.ndarray, root: int, *, name: str = "feeder"
) -> OrientedTree:
    """Orient an unoriented branch list from ``root`` by breadth-first search (F1).

    Parameters
    ----------
    from_bus, to_bus : numpy.ndarray
        Integer bus labels of the branch ends (any orientation), ``[n_branch]``.
    root : int
        Label of the root (supply) bus.
    name : str
        Feeder name, used in error messages.

    Returns
    -------
    OrientedTree
        Bus labels, root position, and each branch's parent, child and input index, in
        breadth-first order from the root; adjacent branches are visited in input order.

    Raises
    ------
    TopologyError
        If the branches do not form a tree spanning every bus from ``root``: a count other
        than ``n_bus - 1`` ("meshed (has a loop)" or "not connected"), or buses unreachable
        from the root ("not radial").
    """
    labels = pd.Index(np.unique(np.r_[from_bus, to_bus, [root]]))
    n = len(labels)
    if len(from_bus) != n - 1:
        kind = "meshed (has a loop)" if len(from_bus) > n - 1 else "not connected"
        raise TopologyError(
            f"feeder '{name}' is {kind}: {len(from_bus)} branches for {n} buses "
            f"(a radial feeder has n_bus - 1)"
        )
    f_pos, t_pos = labels.get_indexer(from_bus), labels.get_indexer(to_bus)
    root_pos = int(labels.get_loc(root))
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k, (a, b) in enumerate(zip(f_pos, t_pos, strict=True)):
        adjacency[a].append((b, k))
        adjacency[b].append((a, k))
    parent_of = np.full(n, -1)
    branch_of = np.full(n, -1)
    seen = np.zeros(n, dtype=bool)
    seen[root_pos] = True
    order = []
    queue = deque([root_pos])
    while queue:
        u = queue.popleft()
        order.append(u)
        for v, k in adjacency[u]:
            if not seen[v]:
                seen[v] = True
                parent_of[v], branch_of[v] = u, k
                queue.append(v)
    if not seen.all():  # n - 1 branches and unreachable buses: a loop elsewhere
        missing = list(labels[~seen][:5])
        raise TopologyError(
            f"feeder '{name}' is not radial: buses {missing} are unreachable from the "
            f"root {root} while another part has a loop"
        )
    children = np.array(order[1:])  # breadth-first: every parent precedes its children
    return OrientedTree(labels, root_pos, parent_of[children], children, branch_of[children])


def parallel_groups(from_bus: np.ndarray, to_bus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group the branches that join the same pair of buses (parallel lines or transformers).

    Parameters
    ----------
    from_bus, to_bus : numpy.ndarray
        Integer bus labels of the branch ends (any orientation), ``[n_branch]``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``first``: input index of the first branch of each group, groups in order of first
        appearance; ``group``: ``[n_branch]`` group number of each branch. Without parallel
        branches, ``first`` is ``0..n_branch-1`` and ``group`` the same.
    """
    a = np.asarray(from_bus, dtype=np.int64)
    b = np.asarray(to_bus, dtype=np.int64)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.reshape(-1)].astype(np.int64)


def parallel_impedance(z: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Impedance of each group of parallel branches, ``1 / Σ 1/z`` (a group of one keeps its
    ``z`` exactly; a zero impedance shorts its group).

    Parameters
    ----------
    z : numpy.ndarray
        Complex series impedance of each branch ``[n_branch]``.
    group : numpy.ndarray
        Group number of each branch (:func:`parallel_groups`).
    n_groups : int
        Number of groups.
    """
    count = np.bincount(group, minlength=n_groups)
    out = np.zeros(n_groups, dtype=complex)
    single = count[group] == 1
    out[group[single]] = z[single]
    multi = ~single
    if multi.any():
        zero = z[multi] == 0
        adm = np.zeros(n_groups, dtype=complex)
        np.add.at(adm, group[multi][~zero], 1.0 / z[multi][~zero])
        shorted = np.zeros(n_groups, dtype=bool)
        shorted[group[multi][zero]] = True
        idx = np.flatnonzero((count > 1) & ~shorted)
        out[idx] = 1.0 / adm[idx]
    return out
