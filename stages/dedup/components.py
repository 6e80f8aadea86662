"""Connected components of a duplicate graph given as edge lists of int64 node keys.

`components` is the one the dedup stage uses: vectorised hook-to-min with pointer jumping in
numpy (each round hooks every root to the smallest root it touches, then flattens the trees),
so a component's label is its smallest key and the result does not depend on edge order.
`contract` turns one partition's edges into a star forest (node -> its local component's
smallest key): applied per partition on the workers, it shrinks what the final global pass
sees from the pair edges to one edge per node and partition.

The references the tests and scripts/dedup_bench.py compare it against (a Python union-find,
scipy's csgraph) are in scripts/dedup_reference.py.
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
