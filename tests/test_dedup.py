"""dedup: MinHash against datasketch, the global steps on small data, resume, and one CLI run."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import schema
from curate.stages.dedup import components, steps, minhash
from curate.stages.dedup import DedupConfig, DedupStage, make_job, run_steps, write_pairs

from conftest import ROOT, corpus

sys.path.insert(0, str(ROOT / "scripts"))
from dedup_reference import normalise_text, shingle_strings, union_find  # noqa: E402

datasketch = pytest.importorskip("datasketch")

WORDS = [f"w{i}" for i in range(5000)]


def local_map(fn, items, desc=""):
    return [fn(item) for item in items]


def write_parts(folder: Path, parts: list[list[dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p, rows in enumerate(parts):
        cols = {"id": [r["id"] for r in rows], "text": pa.array([r["text"] for r in rows], pa.large_string())}
        if any("quality_score" in r for r in rows):
            cols["quality_score"] = pa.array([r.get("quality_score") for r in rows], pa.float32())
        pq.write_table(schema.conform(pa.table(cols)), folder / f"part-{p:05d}.parquet")


def run(tmp_path: Path, parts: list[list[dict]], **settings):
    """prepare (sequentially, no Ray) and process every part; returns (kept, removed, plan)."""
    write_parts(tmp_path / "in", parts)
    config = DedupConfig(**settings)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    plan = make_job(config, work, tmp_path / "in", workers=2)
    report = run_steps(plan, local_map)
    stage = DedupStage(config, work)
    kept, removed = [], []
    for p in range(len(parts)):
        stage.start_shard(f"part-{p:05d}")
        result = stage.process(schema.conform(pq.read_table(tmp_path / "in" / f"part-{p:05d}.parquet")))
        assert result.kept.num_rows + result.removed.num_rows == len(parts[p])
        kept.append(result.kept)
        removed.append(result.removed)
    return pa.concat_tables(kept), pa.concat_tables(removed), plan, report


def words(n: int, seed: int) -> list[str]:
    return random.Random(seed).sample(WORDS, n)


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    sa = set(shingle_strings(normalise_text(a), n))
    sb = set(shingle_strings(normalise_text(b), n))
    return len(sa & sb) / len(sa | sb)


# -- minhash ---------------------------------------------------------------------------------
def test_normalise_folds_case_punctuation_and_whitespace():
    assert normalise_text("  Hello,   WORLD!!\n\tNew—line “quoted” l’été  ") == "hello world new line quoted l été"
    assert normalise_text("¿Qué? ¡Sí! 日本語、テスト。 x²") == "qué sí 日本語 テスト x²"
    assert normalise_text("...!!!") == ""
    buf, off = minhash.normalise(pa.array(["A b", None, "", "C.", " d "], pa.large_string()))
    assert [buf[off[i]: off[i + 1]].tobytes().decode() for i in range(5)] == ["a b", "", "", "c", "d"]


@pytest.mark.parametrize("unit,n", [("word", 5), ("char", 5), ("word", 2)])
def test_signatures_equal_datasketch(unit, n):
    texts = [" ".join(words(80, s)) for s in range(5)] + ["Short text.", "one", "", "a b c d e", "Ünïcode wörds, ok?"]
    buf, off = minhash.normalise(pa.array(texts, pa.large_string()))
    hashes, s_off = minhash.shingle_hashes(buf, off, n, unit)
    a, b = minhash.permutations(64, seed=3)
    sigs = minhash.signatures(hashes, s_off, a, b)
    for i, text in enumerate(texts):
        shingles = shingle_strings(normalise_text(text), n, unit)
        assert s_off[i + 1] - s_off[i] == len(shingles)
        m = datasketch.MinHash(num_perm=64, seed=3, scheme="legacy", hashfunc=lambda s: minhash.shingle_hash(s, unit))
        m.update_batch(shingles)
        assert np.array_equal(m.hashvalues, sigs[i].astype(np.uint64)), text


def test_signatures_across_chunks_and_batches(monkeypatch):
    """A document split across permutation chunks, or texts hashed in several slices, give the
    same signature as hashing it alone."""
    texts = [" ".join(words(300, s)) for s in range(6)]
    hasher = minhash.Hasher(num_perm=32, bands=4, rows=8)
    alone = np.stack([hasher.hash_texts(pa.array([t], pa.large_string()))["signature"][0] for t in texts])
    monkeypatch.setattr(minhash, "CHUNK", 97)
    monkeypatch.setattr(minhash, "SLICE_BYTES", 1000)
    together = hasher.hash_texts(pa.array(texts, pa.large_string()))
    assert np.array_equal(together["signature"], alone)
    assert together["bands"].shape == (6, 4)


def test_optimal_param_equals_datasketch():
    from datasketch.lsh import _optimal_param

    for num_perm in (16, 64, 128, 256):
        for t in np.arange(0.1, 0.96, 0.05):
            assert minhash.optimal_param(float(t), num_perm) == _optimal_param(float(t), num_perm, 0.5, 0.5), (t, num_perm)


def test_bucket_pairs_all_pairs_small_star_large():
    bkey = np.array([7, 7, 7, 9, 9, 9, 9, 5], np.uint64)
    doc = np.array([3, 1, 2, 10, 13, 11, 12, 4], np.int64)
    a, b = steps.bucket_pairs(bkey, doc, max_bucket=3)
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 2), (1, 3), (2, 3), (10, 11), (10, 12), (10, 13)]


def test_bucket_pairs_collapse_exact_copies():
    # band bucket 7: docs 1, 2, 3 are copies (exact hash 50), 4 differs; exact bucket 8 holds 1, 2, 3
    bkey = np.array([7, 7, 7, 7, 8, 8, 8], np.uint64)
    doc = np.array([3, 2, 1, 4, 3, 1, 2], np.int64)
    exact = np.array([50, 50, 50, 60, 50, 50, 50], np.uint64)
    is_exact = np.array([False] * 4 + [True] * 3)
    a, b = steps.bucket_pairs(bkey, doc, 64, exact, is_exact)
    # the band bucket pairs only its smallest copy with 4; the exact bucket is a star around 1
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 2), (1, 3), (1, 4)]


def test_components_match_union_find():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 400, 300) * 1000
    v = rng.integers(0, 400, 300) * 1000
    u, v = u[u != v], v[u != v]
    nodes, labels = components.components(u, v)
    ref_nodes, ref_labels = union_find(u, v)
    assert np.array_equal(nodes, ref_nodes) and np.array_equal(labels, ref_labels)
    star_u, star_v = components.contract(u, v)
    assert star_u.size < u.size
    star_nodes, star_labels = components.components(star_u, star_v)
    assert np.array_equal(star_nodes, nodes) and np.array_equal(star_labels, labels)


def test_exact_jaccard_of_sets():
    sets = (np.array([1, 2, 3, 4, 5, 9, 2, 3, 4, 6, 9], np.uint64), np.array([0, 4, 6, 10, 11]))
    assert steps.exact_jaccard(sets, np.array([0, 1, 0]), np.array([2, 3, 0])).tolist() == [3 / 5, 1 / 2, 1.0]
    # docs 1, 2, 3 hold 5 + 7 + 9 shingles, each counted once per block
    a, b, n_a, n_b = np.array([1, 1, 2]), np.array([2, 3, 3]), np.array([5, 5, 7]), np.array([7, 9, 9])
    assert steps._blocks(a, b, n_a, n_b, 21) == [(0, 3)]
    assert steps._blocks(a, b, n_a, n_b, 20) == [(0, 1), (1, 2), (2, 3)]


# -- the stage -------------------------------------------------------------------------------
def test_exact_duplicates_keep_one(tmp_path):
    base = " ".join(words(60, 1))
    rows = [{"id": "b", "text": base}, {"id": "a", "text": base.upper().replace(" ", ",  ")},
            {"id": "c", "text": " ".join(words(60, 2))}, {"id": "d", "text": base + "!"}]
    kept, removed, _, _ = run(tmp_path, [rows[:2], rows[2:]])
    assert sorted(kept.column("id").to_pylist()) == ["a", "c"]  # a is the longest text
    r = {row["id"]: row for row in removed.to_pylist()}
    assert r["b"]["reason"] == r["d"]["reason"] == "dedup:exact"
    assert r["b"]["dup_of"] == "a" and r["b"]["dup_size"] == 3
    k = {row["id"]: row for row in kept.to_pylist()}
    assert k["a"]["dup_of"] is None and k["a"]["dup_size"] == 3 and k["a"]["dup_cluster"] == r["b"]["dup_cluster"]
    assert k["c"]["dup_size"] == 1 and k["c"]["dup_cluster"] is None
    assert kept.schema.field("dup_cluster").type == pa.int64()


def test_near_duplicates_found_at_their_jaccard(tmp_path):
    base = words(200, 3)
    near = list(base)
    near[100] = "changed"  # 5 shingles of 196 differ: Jaccard 191/201
    mid = list(base)
    for i in (20, 60, 100, 140, 180):
        mid[i] = f"x{i}"  # 25 shingles differ: Jaccard 171/221, just below 0.8
    far = words(200, 4)
    texts = {"base": " ".join(base), "near": " ".join(near), "mid": " ".join(mid), "far": " ".join(far)}
    rows = [{"id": k, "text": t} for k, t in texts.items()]
    kept, removed, plan, report = run(tmp_path, [rows[:2], rows[2:]], partitions=2)
    assert shingle_jaccard(texts["base"], texts["near"]) == pytest.approx(191 / 201)
    assert shingle_jaccard(texts["base"], texts["mid"]) == pytest.approx(171 / 221)
    assert removed.column("id").to_pylist() == ["near"] or removed.column("id").to_pylist() == ["base"]
    assert removed.column("reason").to_pylist() == ["dedup:minhash"]
    write_pairs(plan, tmp_path / "pairs")
    pairs = pq.read_table(tmp_path / "pairs").to_pylist()
    assert [{p["id_a"], p["id_b"]} for p in pairs] == [{"base", "near"}]
    assert report["compare"]["pairs"] >= 2  # mid was a candidate, then rejected


def test_keep_policy_quality_then_length_then_id(tmp_path):
    base = words(100, 5)
    longer = base + ["tail"]
    rows = [{"id": "q-low", "text": " ".join(longer), "quality_score": 0.2},
            {"id": "q-high", "text": " ".join(base), "quality_score": 0.9},
            {"id": "q-null", "text": " ".join(longer + ["more"]), "quality_score": None}]
    kept, removed, _, _ = run(tmp_path / "q", [rows])
    assert kept.column("id").to_pylist() == ["q-high"]
    assert set(removed.column("dup_of").to_pylist()) == {"q-high"}
    rows = [{"id": "z", "text": " ".join(longer)}, {"id": "y", "text": " ".join(base)}, {"id": "x", "text": " ".join(base)}]
    kept, removed, _, _ = run(tmp_path / "len", [rows])
    assert kept.column("id").to_pylist() == ["z"]
    assert dict(zip(removed.column("id").to_pylist(), removed.column("reason").to_pylist())) == {
        "y": "dedup:minhash", "x": "dedup:minhash"}


def test_prepare_resumes_after_losing_intermediate_files(tmp_path):
    parts = [[{"id": f"{p}-{i}", "text": " ".join(words(50, (p * 7 + i) % 9))} for i in range(6)] for p in range(3)]
    write_parts(tmp_path / "in", parts)
    config = DedupConfig()
    work = tmp_path / "work"
    work.mkdir()
    plan = make_job(config, work, tmp_path / "in", workers=1)
    assert plan.groups == 2
    run_steps(plan, local_map)
    before = {p.name: pq.read_table(p) for p in sorted((work / "decisions").glob("*.parquet"))}
    (work / "sign" / "part-00001.parquet").unlink()
    (work / "bands" / "g001" / "part-00000.parquet").unlink()
    (work / "decisions" / "part-00002.parquet").unlink()
    calls: list[tuple[str, bool]] = []

    def recording_map(fn, items, desc=""):
        out = local_map(fn, items)
        calls.extend((fn.__name__, bool(r.get("skipped"))) for r in out)
        return out

    run_steps(make_job(config, work, tmp_path / "in", workers=5), recording_map)
    redone = [name for name, skipped in calls if not skipped]
    assert sorted(redone) == ["decide", "sign", "sign"]  # part-00001, and the part whose band file went
    after = {p.name: pq.read_table(p) for p in sorted((work / "decisions").glob("*.parquet"))}
    assert after.keys() == before.keys() and all(after[k].equals(before[k]) for k in before)
    assert make_job(config, work, tmp_path / "in", workers=5).groups == 2  # --workers changed, groups did not


def test_quality_generator_small(tmp_path, monkeypatch):
    """A small run of scripts/dedup_quality.py's generator and scorer through the steps (with
    tiny chunks and blocks, so compare and exact work through many slices of pairs)."""
    corpus("web", "jsonl")
    monkeypatch.setattr(steps, "PAIR_CHUNK", 50)
    monkeypatch.setattr(steps, "JACCARD_PAIRS", 7)
    monkeypatch.setattr(steps, "SHINGLE_BUDGET", 5000)
    spec = importlib.util.spec_from_file_location("dedup_quality", ROOT / "scripts" / "dedup_quality.py")
    dq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dq)
    sources = dq.distinct(dq.source_texts(300)[:120])[:60]
    families = dq.make_families(sources, edited=3, max_rate=0.1, seed=1)
    where = dq.write_input(families, tmp_path / "in", per_part=80, seed=1)
    truth, _ = dq.true_pairs(families, where, 0.8)
    config = DedupConfig()
    work = tmp_path / "work"
    work.mkdir()
    plan = make_job(config, work, tmp_path / "in", workers=2)
    run_steps(plan, local_map)
    write_pairs(plan, tmp_path / "pairs")
    result = dq.score(dq.read_pairs(tmp_path / "pairs"), truth, families, where, 0.8)
    assert len(truth) > 30
    assert result["recall"] >= 0.95 and result["precision"] >= 0.95, result


def test_growing_clusters_skip_joined_pairs_same_decisions(tmp_path, monkeypatch):
    """On scripts/scaling_corpus.py's clusters, the pairs that join skips change no decision:
    the same decisions come out when every near-threshold pair is checked, and with other
    key groups (another --workers)."""
    corpus("web", "jsonl")
    spec = importlib.util.spec_from_file_location("scaling_corpus", ROOT / "scripts" / "scaling_corpus.py")
    sc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sc)
    docs = sc.build(1200, seed=3, max_originals=60)  # clusters of about 20
    parts = [[{"id": d["id"], "text": d["text"]} for d in docs[i::3]] for i in range(3)]

    def decisions(folder: Path, **settings) -> dict:
        _, removed, plan, report = run(folder, parts, **settings)
        return {p.name: pq.read_table(p) for p in sorted(plan.path("decisions").glob("*.parquet"))}, report

    base, report = decisions(tmp_path / "base")
    assert report["exact"]["checked"] < report["exact"]["ambiguous"]  # some pairs were already joined
    assert report["compare"]["exact_copies"] < report["decide"]["exact"] * 2  # copies joined by a star, not all pairs
    other, _ = decisions(tmp_path / "groups", partitions=5)
    monkeypatch.setattr(steps, "_labels_of", lambda labels, keys: keys)  # join skips nothing
    every, report_every = decisions(tmp_path / "every")
    assert report_every["exact"]["checked"] == report_every["exact"]["ambiguous"] > report["exact"]["checked"]
    for got in (other, every):
        assert got.keys() == base.keys() and all(got[k].equals(base[k]) for k in base)


def test_config_rejects_half_banding():
    with pytest.raises(ValueError):
        DedupConfig(bands=10)
    with pytest.raises(ValueError):
        DedupConfig(bands=20, rows=10, num_perm=128)
    assert DedupConfig().banding() == minhash.optimal_param(0.55, 128)


# -- through the CLI -------------------------------------------------------------------------
def test_cli_extract_then_dedup_keeps_the_ledger(cli, tmp_path):
    src = corpus("web", "jsonl")
    cfg = tmp_path / "dedup.yaml"
    cfg.write_text("stages: [extract, dedup]\ndedup:\n  threshold: 0.8\n")
    out = tmp_path / "out"
    assert cli("stage", "extract", "--input", src, "--output", out, "--config", cfg, "--workers", "2").exit_code == 0
    result = cli("stage", "dedup", "--output", out, "--config", cfg, "--workers", "2")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "dedup" / "_stats.json").read_text())
    extract = json.loads((out / "extract" / "_stats.json").read_text())
    assert stats["docs_in"] == extract["docs_out"]
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    assert set(stats["removed"]) <= {"dedup:exact", "dedup:minhash"}
    kept = pa.concat_tables([pq.read_table(p) for p in sorted((out / "dedup").glob("part-*.parquet"))])
    assert {"dup_cluster", "dup_size", "dup_of"} <= set(kept.column_names)
    assert stats["dedup"]["pairs_verified"] == sum(pq.read_metadata(p).num_rows for p in (out / "dedup" / "pairs").glob("*.parquet"))
    removed_n = sum(stats["removed"].values())
    assert stats["dedup"]["removed_exact"] + stats["dedup"]["removed_near"] == removed_n
    # a second run is complete and skipped
    again = cli("stage", "dedup", "--output", out, "--config", cfg, "--workers", "2")
    assert again.exit_code == 0 and "skipped" in again.output
