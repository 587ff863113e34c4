"""Orientation of a radial feeder's branch list from its root (eq. F1 in ``models/feeder.md``)."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np
import pandas as pd

from flexopt.errors import TopologyError

__all__ = ["OrientedTree", "orient_tree"]


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
