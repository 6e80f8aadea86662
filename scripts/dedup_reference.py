"""Reference implementations the dedup stage is checked and timed against, kept out of the stage.

    union_find, components_scipy   connected components, as curate.stages.dedup.components gives
                                   them (each node labelled with its component's smallest key)
    normalise_text, shingle_strings    one text's normalised form and its shingles as strings:
                                   the per-document, hash-free form of curate.stages.dedup.minhash

Used by tests/test_dedup.py, scripts/dedup_bench.py and scripts/dedup_quality.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.stages.dedup.minhash import normalise


def union_find(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A plain Python union-find with path halving (per-edge Python)."""
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
    """scipy.sparse.csgraph.connected_components, relabelled to smallest keys."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    nodes, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    graph = coo_matrix((np.ones(u.size, np.int8), (inverse[: u.size], inverse[u.size:])), shape=(nodes.size, nodes.size))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1 if comp.size else 0, np.iinfo(np.int64).max)
    np.minimum.at(smallest, comp, nodes)
    return nodes, smallest[comp]


def normalise_text(text: str) -> str:
    """One text as the dedup stage normalises it before shingling."""
    buf, off = normalise(pa.array([text], pa.large_string()))
    return buf[off[0]: off[1]].tobytes().decode("utf-8")


def shingle_strings(normalised: str, n: int, unit: str = "word") -> list[str]:
    """The shingles of one normalised text as strings."""
    toks = normalised.split(" ") if unit == "word" else list(normalised)
    toks = [t for t in toks if t] if unit == "word" else toks
    sep = " " if unit == "word" else ""
    if not toks:
        return []
    if len(toks) < n:
        return [sep.join(toks)]
    return [sep.join(toks[i: i + n]) for i in range(len(toks) - n + 1)]
