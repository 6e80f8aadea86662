"""Expert balance of the shipped tiny config on real web text, 300 steps on a CPU.

The shards: the shared corpora's 670 non-empty Common Crawl documents, BPE-tokenized with a
4,096-token vocabulary trained on them (the pipeline's own byte-level BPE; 1.15M tokens). The
model and routing are the tiny config's (2 layers of width 128, 8 experts, top-2 + 1 shared, its
lr, warmup and bias rule); to fit CI the windows are 64 tokens and a step 8 of them (tiny: 128
and 16), about 30 CPU-seconds on one thread. It ends with layer imbalances of 1.19 and 1.16;
with DeepSeek-V3's gamma of 1e-3 the same run ends at 1.59 and 2.65 (the second layer
collapsing), so the bound below fails.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import corpus  # noqa: E402

from curate.megatron import Bucket, IndexedDatasetWriter, Manifest, ShardFile, write_manifest  # noqa: E402
from curate.trainer.config import load_config, parse_config  # noqa: E402
from curate.trainer.train import train  # noqa: E402
from curate.stages.tokenize import bpe  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def web_shards(tmp_path_factory):
    from tokenizers import Tokenizer

    path = corpus("web", "jsonl", "dolma-cc-sample.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [t for t in (json.loads(line)["text"] for line in f) if t.strip()]
    tokenizer = Tokenizer.from_str(bpe.train(texts, 4096))
    eos = tokenizer.token_to_id(bpe.DEFAULT_EOS)
    docs = [np.array(e.ids + [eos], dtype=np.uint16) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    folder = tmp_path_factory.mktemp("web-shards")
    (folder / "general").mkdir()
    with IndexedDatasetWriter(folder / "general" / "part-00000", np.uint16) as w:
        w.add_documents(np.concatenate(docs), [d.size for d in docs])
    part = ShardFile("general/part-00000.bin", "general/part-00000.idx", "general/part-00000.parquet",
                     w.documents, w.tokens)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    write_manifest(folder, Manifest("tokenizer.json", "0" * 64, "uint16", eos, vocab,
                                    (Bucket("general", w.documents, w.tokens, (part,)),)))
    return folder


@pytest.mark.slow
@pytest.mark.corpora
def test_tiny_config_keeps_its_experts_balanced_on_web_text(web_shards):
    data = load_config("tiny").model_dump(exclude={"model": {"vocab_size"}})
    data["model"]["seq_len"] = 64
    data["train"].update(batch_size=8, micro_batch_size=8, threads=1)
    config = parse_config(data)
    assert config.train.steps == 300 and config.train.bias_update_rate is None  # the shipped rule
    lines = []
    records = train(config, web_shards, device="cpu", echo=lines.append)
    late = [r for r in records if r["step"] > 0.8 * config.train.steps]  # the last 20% of steps
    per_layer = np.mean([r["imbalance"] for r in late], axis=0)
    print(f"\nmean imbalance over steps 241-300, per layer: {np.round(per_layer, 3).tolist()}; "
          f"loss {records[0]['loss']:.3f} -> {records[-1]['loss']:.3f}")
    assert len(per_layer) == 2 and (per_layer <= 1.5).all()
    assert records[-1]["loss"] < records[0]["loss"] - 1.0
    assert not any(line.startswith("warning: MoE layer") for line in lines)
