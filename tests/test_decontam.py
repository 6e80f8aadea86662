"""Benchmark decontamination: normalisation, n-gram matching, the index, cutting spans,
evaluation-set formats, and the quality filter (removal and cut modes, matched items recorded)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.filters.decontam import index as decontam

# 21 words; with n = 13 an excerpt of 13 consecutive words matches, 12 do not.
QUESTION = ("Which planet in our solar system has the longest day measured in Earth hours and why "
            "does it rotate so slowly")
ANSWER = "Venus, because its rotation is retrograde and extremely slow."


def index(sets: dict[str, list[str]], n: int = 13) -> decontam.Index:
    return decontam.Index({name: decontam.EvalItems([f"q{i}" for i in range(len(t))], t) for name, t in sets.items()}, n)


def words_of(text: str, k: int, start: int = 0) -> str:
    return " ".join(text.split()[start: start + k])


# ---- normalisation and hashing -------------------------------------------------------------------

def test_normalisation_folds_case_and_punctuation():
    a = decontam.words(pa.array(["The quick, brown FOX -- jumps!! (over) the “lazy” dog's tail."]))
    b = decontam.words(pa.array(["the quick brown fox jumps over the lazy dog s tail"]))
    assert a.hashes.tolist() == b.hashes.tolist() and a.offsets.tolist() == [0, 11]
    c = decontam.words(pa.array(["ÄRGER über Café", "ärger ÜBER café"]))
    assert c.hashes[:3].tolist() == c.hashes[3:].tolist()


def test_word_hashes_differ_for_different_words():
    w = decontam.words(pa.array(["ab ba abc a b aa aaa" + " x" * 3, "é e e\u0301"]))
    assert len(set(w.hashes.tolist())) == len(w.hashes) - 2  # " x" thrice
    assert w.offsets.tolist() == [0, 10, 13]


def test_ngrams_stay_inside_documents():
    w = decontam.words(pa.array(["a b c", "d e", "", None, "f g h i"]))
    g = decontam.ngrams(w, 3)
    assert g.doc.tolist() == [0, 4, 4] and g.start.tolist() == [0, 5, 6]


# ---- the index ------------------------------------------------------------------------------------

def test_long_overlap_matches_and_short_one_does_not():
    idx = index({"astro": [f"{QUESTION} {ANSWER}"]})
    docs = pa.array([
        f"Blog post. {words_of(QUESTION, 13, 2)} -- that is what I wondered.",  # 13 words: a hit
        f"Blog post. {words_of(QUESTION, 12, 2)} -- that is what I wondered.",  # 12 words: none
        QUESTION.upper().replace(" ", " ,  "),  # case and punctuation do not matter
    ])
    hits = idx.match(docs)
    assert hits.matched.tolist() == [True, False, True]
    assert hits.per_set[:, 0].tolist() == [1, 0, 9]
    assert hits.items == {0: ["astro:q0"], 2: ["astro:q0"]}


def test_items_shorter_than_n_are_counted_not_indexed():
    idx = index({"s": ["too short to index", QUESTION]})
    assert idx.short == 1 and len(idx) == 21 - 13 + 1


def test_several_sets_and_items():
    idx = index({"one": [QUESTION], "two": ["lorem " * 3 + ANSWER + " and so on for a while longer still"]})
    doc = f"{QUESTION}. Then: {'lorem ' * 3}{ANSWER} and so on for a while longer still."
    hits = idx.match(pa.array([doc, "nothing"]))
    assert hits.per_set[0].tolist() == [9, 8] and hits.item_counts().tolist() == [2, 0]
    assert sorted(hits.items[0]) == ["one:q0", "two:q0"]


def test_coverage_and_cut():
    idx = index({"astro": [QUESTION]})
    doc = f"Intro line here.\n\n{QUESTION}?\n\nOutro line here."
    text = pa.array([doc, "nothing to see"])
    hits = idx.match(text)
    assert hits.coverage()[0] == pytest.approx(21 / 27)
    assert decontam.cut(text, hits, np.array([0])).to_pylist() == ["Intro line here.\n\nOutro line here."]


def test_cut_at_the_ends_of_a_document():
    idx = index({"astro": [QUESTION]})
    text = pa.array([f"{QUESTION}. Tail words.", f"Head words: {QUESTION}", QUESTION])
    hits = idx.match(text)
    assert decontam.cut(text, hits, np.array([0, 1, 2])).to_pylist() == ["Tail words.", "Head words: ", ""]


def test_empty_index_matches_nothing():
    hits = index({"s": ["short"]}).match(pa.array([QUESTION]))
    assert not hits.matched.any()


# ---- evaluation-set files -----------------------------------------------------------------------

def test_jsonl_items_take_named_fields_and_ids(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [{"id": "a1", "question": "Q one", "choices": ["x", "y"], "answer": 3, "meta": {"k": 1}},
            {"question": "Q two", "choices": [], "answer": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = decontam.read_eval_set(path, ["question", "choices"], "id")
    assert items.ids == ["a1", "2"] and items.texts == ["Q one\nx\ny", "Q two"]
    every = decontam.read_eval_set(path)  # every text field, numbers too, not the id
    assert every.texts == ["Q one\nx\ny\n3", "Q two\nB"]


def test_gzip_parquet_and_text_items(tmp_path):
    gz = tmp_path / "set.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "first item"}\n{"text": "second item"}\n'))
    assert decontam.read_eval_set(gz).texts == ["first item", "second item"]
    pq.write_table(pa.table({"uid": [7, 8], "prompt": ["p one", "p two"], "score": [0.5, 1.0]}), tmp_path / "set.parquet")
    items = decontam.read_eval_set(tmp_path / "set.parquet", ["prompt"], "uid")
    assert items.ids == ["7", "8"] and items.texts == ["p one", "p two"]
    (tmp_path / "set.txt").write_text("line one\n\n  \nline four\r\n")
    items = decontam.read_eval_set(tmp_path / "set.txt")
    assert items.ids == ["1", "4"] and items.texts == ["line one", "line four"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", b'{"q": "ok"}\n{not json}\n', "bad.jsonl:2: bad JSON"),
    ("list.jsonl", b'["a"]\n', "list.jsonl:1: a line must be a JSON object"),
    ("missing.jsonl", b'{"q": "ok"}\n', "missing.jsonl:1: no field 'question'"),
    ("set.csv", b"a,b\n", "unknown evaluation set format"),
    ("bad.parquet", b"not parquet", "not a readable Parquet file"),
    ("cut.txt.gz", gzip.compress(b"an item\n" * 100)[:30], "cut.txt.gz: cannot read"),  # compression by magic bytes
])
def test_eval_file_errors_name_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        decontam.read_eval_set(path, ["question"] if name == "missing.jsonl" else None)


# ---- the quality stage's decontam filter -----------------------------------------------------------

PASSAGE = ("The mitochondrion is the organelle that produces most of the chemical energy needed to power "
           "the biochemical reactions of the cell and stores it in adenosine triphosphate")
OTHER = ("Photosynthesis converts light energy into chemical energy that is stored in glucose and other "
         "organic compounds which plants then use to grow and reproduce over many seasons")
ESSAY = ("Students often ask why cells need so much energy. In the textbook we read: {}. That sentence "
         "explains a lot, and the rest of this essay looks at how exercise changes it.")


@pytest.fixture
def eval_files(tmp_path) -> dict[str, Path]:
    bio = tmp_path / "bio.jsonl"
    bio.write_text(json.dumps({"id": "bio-7", "question": PASSAGE, "answer": "B"}) + "\n"
                   + json.dumps({"id": "bio-8", "question": "What is ATP?", "answer": "energy"}) + "\n")
    plants = tmp_path / "plants.txt"
    plants.write_text("a short line\n" + OTHER + "\n")
    return {"bio": bio, "plants": plants}


def quality_stage(eval_files: dict[str, Path], **config):
    from curate.stages.quality import QualityConfig, QualityStage

    sets = [{"name": "bio", "path": eval_files["bio"], "fields": ["question"]},
            {"name": "plants", "path": eval_files["plants"]}]
    return QualityStage(QualityConfig(filters=["decontam"], decontam={"sets": sets, **config}))


def batch_of(texts: list[str]) -> pa.Table:
    from curate import schema

    return schema.conform(pa.table({"id": [f"id{i}" for i in range(len(texts))],
                                    "origin": [f"o{i}" for i in range(len(texts))],
                                    "text": texts, "source": ["web"] * len(texts)}))


def test_remove_mode_names_the_set_and_records_the_item(eval_files):
    texts = ["An unrelated page about the weather in spring and summer.",
             ESSAY.format(PASSAGE.upper().replace(" the ", ", the ")),  # case and punctuation folded
             ESSAY.format(OTHER) + " " + PASSAGE,
             ESSAY.format(" ".join(PASSAGE.split()[:12]))]  # 12 words: not enough
    result = quality_stage(eval_files).process(batch_of(texts))
    assert result.kept.column("id").to_pylist() == ["id0", "id3"]
    removed = {r["id"]: r for r in result.removed.to_pylist()}
    assert removed["id1"]["reason"] == "quality:decontam:bio"
    assert removed["id2"]["reason"] == "quality:decontam:bio"  # the first listed set that matched
    assert json.loads(removed["id1"]["decontam_items"]) == ["bio:bio-7"]
    assert sorted(json.loads(removed["id2"]["decontam_items"])) == ["bio:bio-7", "plants:2"]
    assert removed["id2"]["decontam_matches"] == 2 and removed["id2"]["decontam_plants"] == 27 - 13 + 1
    assert removed["id1"]["text"] == texts[1]
    kept = result.kept.to_pylist()
    assert kept[0]["decontam_items"] is None and kept[0]["decontam_matches"] == 0
    assert result.kept.column("decontam_coverage").type == pa.float32()
    assert result.counters["decontam"] == {"docs": {"bio": 2, "plants": 1}}


def test_max_ngrams_tolerates_short_overlaps(eval_files):
    text = ESSAY.format(" ".join(PASSAGE.split()[:15]))  # 3 matched 13-grams
    assert quality_stage(eval_files, max_ngrams=3).process(batch_of([text])).removed.num_rows == 0
    assert quality_stage(eval_files, max_ngrams=2).process(batch_of([text])).removed.num_rows == 1


def test_cut_mode_cuts_the_span_and_removes_copies(eval_files):
    texts = [ESSAY.format(PASSAGE), f"{PASSAGE}. {OTHER}.", "Nothing to cut here at all."]
    result = quality_stage(eval_files, mode="cut").process(batch_of(texts))
    kept = result.kept.to_pylist()
    assert [r["id"] for r in kept] == ["id0", "id2"]
    assert kept[0]["text"] == ("Students often ask why cells need so much energy. In the textbook we read: "
                               "That sentence explains a lot, and the rest of this essay looks at how exercise changes it.")
    assert kept[0]["decontam_words_cut"] == 27 and json.loads(kept[0]["decontam_items"]) == ["bio:bio-7"]
    removed = result.removed.to_pylist()
    assert removed[0]["reason"] == "quality:decontam:mostly_eval" and removed[0]["text"] == texts[1]
    assert kept[1]["text"] == texts[2]
    assert result.counters["decontam"] == {"docs": {"bio": 2, "plants": 1}, "cut_docs": 1, "cut_words": 27}


def test_without_sets_the_filter_adds_nothing():
    from curate.stages.quality import QualityConfig, QualityStage

    result = QualityStage(QualityConfig(filters=["decontam"])).process(batch_of(["some text " * 20]))
    assert result.kept.num_rows == 1 and not [c for c in result.kept.column_names if c.startswith("decontam")]
    assert "decontam" not in result.counters


# ---- config errors: one line, exit code 2, before Ray ------------------------------------------

def write_config(tmp_path: Path, sets: list[dict]) -> Path:
    import yaml

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"stages": ["extract", "quality"],
                                   "quality": {"filters": ["decontam"], "decontam": {"sets": sets}}}))
    return cfg


@pytest.mark.parametrize("sets, message", [
    ([{"name": "mmlu", "path": "evals/missing.jsonl"}], "quality.decontam.sets.0.path: Value error, file not found"),
    ([{"name": "bad", "path": "bad.jsonl"}], "bad.jsonl:1: bad JSON"),
    ([{"name": "a b", "path": "bad.jsonl"}], "quality.decontam.sets.0.name: String should match pattern"),
    ([{"name": "x", "path": "ok.txt"}, {"name": "x", "path": "ok.txt"}], "two evaluation sets have the same name"),
])
def test_bad_eval_sets_end_with_one_line_and_exit_2(tmp_path, sets, message):
    from click.testing import CliRunner

    from curate.cli.main import cli

    (tmp_path / "bad.jsonl").write_text("{oops\n")
    (tmp_path / "ok.txt").write_text("an item\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hello")
    result = CliRunner().invoke(cli, ["run", "--config", str(write_config(tmp_path, sets)), "--input",
                                      str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()


# ---- end to end: extract and quality through the CLI, on real text -----------------------------

@pytest.mark.corpora
def test_pipeline_run_records_decontam_and_pii_in_the_ledger(cli, tmp_path):
    from conftest import corpus

    web = corpus("web", "jsonl", "dolma-cc-sample.jsonl.gz")
    dclm = corpus("quality", "dclm-agreement.jsonl")
    with gzip.open(web, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f][:60]
    with open(dclm, encoding="utf-8") as f:
        passages = [json.loads(line)["text"] for line in f]
    planted = {3: 10, 17: 42, 30: 200}  # document -> DCLM line quoted in it (40 words)
    for doc, line in planted.items():
        quote = " ".join(passages[line - 1].split()[5:45])
        docs[doc]["text"] = f"{docs[doc]['text']}\n\nAs the article says: {quote}\n"
    docs[5]["text"] += "\nQuestions? Write to ana.lima@fictional-firm.org or call +44 20 7946 0958."
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "web.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({
        "stages": ["extract", "quality"],
        "quality": {"filters": ["decontam", "pii"],
                    "decontam": {"sets": [{"name": "dclm", "path": str(dclm), "fields": ["text"], "id_field": None}]}},
    }))
    out = tmp_path / "out"
    result = cli("run", "--config", cfg, "--input", tmp_path / "in", "--output", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "quality" / "_stats.json").read_text())
    assert stats["removed"] == {"quality:decontam:dclm": 3}
    assert stats["counters"]["decontam"] == {"docs": {"dclm": 3}}
    assert stats["counters"]["pii"]["email"] >= 1 and stats["counters"]["pii"]["phone"] >= 1
    removed = pq.read_table(out / "quality" / "removed").to_pylist()
    assert sorted(json.loads(r["decontam_items"])[0] for r in removed) == sorted(f"dclm:{n}" for n in planted.values())
    kept = pa.concat_tables(pq.read_table(p, columns=["text", "pii_email", "decontam_matches"])
                            for p in sorted((out / "quality").glob("part-*.parquet")))
    assert "<EMAIL>" in "".join(kept.column("text").to_pylist())
    assert kept.column("pii_email").type == pa.float32() and pa.compute.sum(kept.column("decontam_matches")).as_py() == 0
    report = cli("report", out, "--html", tmp_path / "report.html")
    assert report.exit_code == 0, report.output
    assert "PII replaced" in report.output and "Benchmark contamination" in report.output
    page = (tmp_path / "report.html").read_text()
    assert 'id="decontam-table"' in page and re.search(r"PII replaced in kept documents: [^<]*email [1-9]", page)
