"""Microgrids made of a feeder's laterals (``flexopt generate --microgrids K``, the bundled
``rts24-3dso-mg``; ``models/microgrid.md``).

A lateral — a bus and everything below it — becomes a microgrid: its branches (the one that
joins it to the feeder included) are the microgrid's network, rooted at the lateral's parent
bus, which becomes the point of connection; its loads move with it; its prosumers become
the members. The DSO keeps the rest of its feeder. The electrical system is unchanged: only
who runs the lateral's market is.
"""

from __future__ import annotations

from dataclasses import replace

from flexopt.errors import FlexoptError
from flexopt.instance.schema import DSOData, FeederData, Instance, MicrogridData

__all__ = ["lateral_microgrids"]


def lateral_microgrids(inst: Instance, per_dso: int) -> Instance:
    """``inst`` with up to ``per_dso`` laterals of every DSO's feeder run as microgrids.

    The laterals chosen, one after another and disjoint: the one with the most prosumers
    among those holding at least two and at most half of the DSO's prosumers, whose parent
    is not the feeder's root (ties: the smaller lateral, then the lower bus label).

    Raises
    ------
    FlexoptError
        If a DSO has no such lateral, or already has microgrids.
    """
    if per_dso < 1:
        raise FlexoptError(f"microgrids per DSO must be at least 1, got {per_dso}")
    return replace(inst, dsos=tuple(_split(d, per_dso) for d in inst.dsos))


def _split(dso: DSOData, count: int) -> DSOData:
    if dso.microgrids:
        raise FlexoptError(f"DSO {dso.id!r} already has microgrids")
    br = dso.feeder.branches
    children: dict[int, list[int]] = {}
    for f, t in zip(br["from_bus"], br["to_bus"], strict=True):
        children.setdefault(int(f), []).append(int(t))
    parent = dict(zip(br["to_bus"].astype(int), br["from_bus"].astype(int), strict=True))

    def below(bus: int) -> set[int]:
        out, stack = set(), [bus]
        while stack:
            b = stack.pop()
            out.add(b)
            stack.extend(children.get(b, []))
        return out

    pros = dso.prosumers
    taken: set[int] = set()
    grids: list[MicrogridData] = []
    for k in range(count):
        best: tuple[int, int, int] | None = None
        for head in sorted(parent):
            if parent[head] == dso.feeder.root or parent[head] in taken:
                continue
            sub = below(head)
            if sub & taken:
                continue
            n = int(pros["bus"].isin(sub).sum())
            if 2 <= n <= len(pros) // 2 and (
                best is None or (-n, len(sub), head) < (-best[0], best[1], best[2])
            ):
                best = (n, len(sub), head)
        if best is None:
            if k == 0:
                raise FlexoptError(
                    f"DSO {dso.id!r}: no lateral of feeder {dso.feeder.name} holds between "
                    f"2 and {len(pros) // 2} of its {len(pros)} prosumers"
                )
            break
        head = best[2]
        sub = below(head)
        taken |= sub
        mg_id = f"{dso.id}-MG{k + 1}"
        inside = br["to_bus"].isin(sub).to_numpy()
        network = FeederData(
            name=mg_id,
            branches=br.loc[inside].reset_index(drop=True),
            vn_kv=dso.feeder.vn_kv,
            root=parent[head],
        )
        members = pros.index[pros["bus"].isin(sub).to_numpy()]
        grids.append(
            MicrogridData(mg_id, parent[head], network, pros.loc[members], dso.baseline_mw[members])
        )
    kept = ~br["to_bus"].isin(taken).to_numpy()
    feeder = FeederData(
        name=f"{dso.feeder.name}-{dso.id}",
        branches=br.loc[kept].reset_index(drop=True),
        vn_kv=dso.feeder.vn_kv,
        root=dso.feeder.root,
    )
    direct = pros.index[~pros["bus"].isin(taken).to_numpy()]
    return replace(
        dso,
        feeder=feeder,
        prosumers=pros.loc[direct],
        baseline_mw=dso.baseline_mw[direct],
        microgrids=tuple(grids),
    )
