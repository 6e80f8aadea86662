"""Connected components of a duplicate graph given as edge lists of int64 node keys.

`components` is the one the dedup stage uses: vectorised hook-to-min with pointer jumping in
numpy (each round hooks every root to the smallest root it touches, then flattens the trees),
so a component's label is its smallest key and the result does not depend on edge order.
`contract` turns one partition's edges into a star forest (node -> its local component's
smallest key): applied per partition on the workers, it shrinks what the final global pass
sees from the pair edges to one edge per node and partition.

`union_find` and `components_scipy` are the references the benchmark compares against
(scripts/dedup_bench.py); scipy is optional and not needed at run time.
"""

from __future__ import annotations

import numpy as np


def _dense(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nodes, inv = np.unique(np.concatenate([u, v]), return_inverse=True)
    return nodes, inv[: u.size], inv[u.size:]


def _roots(n: int, ui: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """Root (smallest index) of each of n dense nodes under edges (ui, vi)."""
    parent = np.arange(n, dtype=np.int64)
    while True:
        pu, pv = parent[ui], parent[vi]
        lo, hi = np.minimum(pu, pv), np.maximum(pu, pv)
        differ = lo != hi
        if not differ.any():
            return parent
        # hi and lo are roots (trees are flat after each round): hook hi under the smallest lo
        np.minimum.at(parent, hi[differ], lo[differ])
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, labels): every node that appears in an edge and its component's smallest key."""
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    if u.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nodes, ui, vi = _dense(u, v)
    return nodes, nodes[_roots(nodes.size, ui, vi)]


def contract(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges (node, local root) for every non-root node: same components, fewer edges."""
    nodes, labels = components(u, v)
    star = nodes != labels
    return nodes[star], labels[star]


def union_find(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: a plain Python union-find with path halving (per-edge Python)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(u.tolist(), v.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    nodes = np.array(sorted(parent), np.int64)
    return nodes, np.array([find(x) for x in nodes.tolist()], np.int64)


def components_scipy(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: scipy.sparse.csgraph.connected_components, relabelled to smallest keys."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, ui, vi = _dense(np.asarray(u, np.int64), np.asarray(v, np.int64))
    graph = coo_matrix((np.ones(ui.size, np.int8), (ui, vi)), shape=(nodes.size, nodes.size))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1 if comp.size else 0, np.iinfo(np.int64).max)
    np.minimum.at(smallest, comp, nodes)
    return nodes, smallest[comp]
