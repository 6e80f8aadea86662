"""The reference MoE trainer: model, curriculum data, training loop, resume, CLI.

Shards are made in the tests from real text (stdlib docstrings and sources, generated
sentences and sums), one token per byte plus EOS = 256. Models are tiny (width 64, 2 layers,
context 64), so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from curate.cli.train import TORCH_MISSING, train as train_command  # noqa: E402
from curate.errors import UserError  # noqa: E402
from curate.megatron import (  # noqa: E402
    Bucket, IndexedDatasetWriter, Manifest, ShardFile, read_manifest, write_manifest,
)
from curate.trainer.config import Config, ModelConfig, Phase, load_config, parse_config  # noqa: E402
from curate.trainer.data import CurriculumBatches  # noqa: E402
from curate.trainer.model import MoETransformer, RoutedExperts, sequence_balance_loss  # noqa: E402
from curate.trainer.train import CHECKPOINT_NAME, learning_rate, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EOS = 256
VOCAB = 257


def bucket_texts(name: str) -> list[str]:
    rng = random.Random(name)
    if name == "easy":
        subjects, verbs = ["The cat", "A dog", "My friend", "The bird"], ["sees", "likes", "finds"]
        things = ["a ball", "the sun", "some bread"]
        return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(things)}." for _ in range(600)]
    if name == "reasoning":
        return [f"If a = {a} and b = {b}, then a + b = {a + b} and a * b = {a * b}."
                for a, b in ((rng.randint(1, 99), rng.randint(1, 99)) for _ in range(600))]
    import argparse
    import json as json_module
    import textwrap

    modules = (argparse, json_module, textwrap)
    if name == "general":
        return [inspect.getdoc(obj) for m in modules for _, obj in inspect.getmembers(m)
                if inspect.getdoc(obj) and (inspect.isfunction(obj) or inspect.isclass(obj))]
    return [inspect.getsource(obj) for m in modules for _, obj in inspect.getmembers(m, inspect.isfunction)
            if obj.__module__ == m.__name__]


def make_shards(folder, names=("easy", "general", "reasoning", "code"), files_per_bucket=2):
    """Bucketed byte-level shards, each document ending with EOS, split over several parts."""
    buckets = []
    for name in names:
        docs = [np.append(np.frombuffer(t.encode(), dtype=np.uint8), EOS) for t in bucket_texts(name)]
        (folder / name).mkdir(parents=True, exist_ok=True)
        parts = []
        for i, chunk in enumerate(np.array_split(np.arange(len(docs)), files_per_bucket)):
            with IndexedDatasetWriter(folder / name / f"part-{i:05d}", np.uint16) as w:
                w.add_documents(np.concatenate([docs[j] for j in chunk]), [docs[j].size for j in chunk])
            parts.append(ShardFile(f"{name}/part-{i:05d}.bin", f"{name}/part-{i:05d}.idx",
                                   f"{name}/part-{i:05d}.parquet", w.documents, w.tokens))
        buckets.append(Bucket(name, sum(p.documents for p in parts), sum(p.tokens for p in parts), tuple(parts)))
    write_manifest(folder, Manifest("tokenizer.json", "0" * 64, "uint16", EOS, VOCAB, tuple(buckets)))
    return folder


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"))


def tiny(steps=50, model=None, **train):
    return parse_config({
        "model": {"d_model": 64, "n_layer": 2, "n_head": 2, "seq_len": 64, "expert_hidden": 64, **(model or {})},
        "train": {"steps": steps, "batch_size": 8, "micro_batch_size": 4, "lr": 3e-3, "warmup_steps": 5,
                  "log_every": 1, "threads": 1, **train},
    })


def quiet(_line):
    pass


# --- model -----------------------------------------------------------------------------------


def test_grouped_experts_equal_a_loop_over_experts():
    torch.manual_seed(0)
    experts = RoutedExperts(4, 16, 8)
    for p in experts.parameters():
        torch.nn.init.normal_(p)
    counts = torch.tensor([3, 0, 5, 2])  # an expert with no tokens too
    x = torch.randn(10, 16)
    expected = []
    for e, rows in enumerate(x.split(counts.tolist())):
        gate, up = (rows @ experts.gate_up[e]).chunk(2, dim=-1)
        expected.append((torch.nn.functional.silu(gate) * up) @ experts.down[e])
    torch.testing.assert_close(experts(x, counts), torch.cat(expected))


def test_moe_forward_shapes_load_and_bias_only_picks():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, n_head=2, seq_len=16, expert_hidden=16, n_routed_experts=4, top_k=2)
    model = MoETransformer(cfg)
    tokens = torch.randint(0, VOCAB, (3, 16))
    logits, loss = model(tokens, tokens)
    assert logits.shape == (3, 16, VOCAB) and loss.ndim == 0
    for moe in model.moe_layers():
        assert moe.load.shape == (4,) and int(moe.load.sum()) == 3 * 16 * 2

    # A large bias on expert 3 makes every token choose it, yet the mixing weights still come
    # from the unbiased scores: they are the same as with a bias that changes no choice.
    moe = model.moe_layers()[0]
    x = torch.randn(5, 32)
    moe.router.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0]))
    chosen, weights, scores = moe.router(x)
    assert (chosen == 3).any(dim=1).all()
    unbiased = scores.gather(-1, chosen)
    torch.testing.assert_close(weights, unbiased / unbiased.sum(-1, keepdim=True))


def test_routing_bias_update_follows_the_sign_rule():
    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, n_head=2, seq_len=16, expert_hidden=16, n_routed_experts=4)
    model = MoETransformer(cfg)
    loads = [torch.tensor([10, 2, 4, 0]) for _ in model.moe_layers()]  # mean 4
    model.update_routing_bias(loads, 0.01)
    assert tiny(lr=2e-3).train.bias_rate == pytest.approx(2e-2)  # unset: 10 x the peak lr
    assert tiny(lr=2e-3, bias_update_rate=1e-3).train.bias_rate == 1e-3
    for moe in model.moe_layers():
        assert moe.router.bias.tolist() == pytest.approx([-0.01, 0.01, 0.0, 0.01])
    assert "blocks.0.ffn.router.bias" in model.state_dict()  # so checkpoints carry it


def test_sequence_balance_loss_is_one_when_even_and_has_gradients():
    chosen = torch.tensor([[[0, 1], [2, 3]]])  # one sequence, 2 tokens, top-2 of 4: every expert once
    scores = torch.full((1, 2, 4), 0.5, requires_grad=True)
    loss = sequence_balance_loss(chosen, scores)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert scores.grad is not None

    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, n_head=2, seq_len=16, expert_hidden=16, balance_loss_coef=0.01)
    model = MoETransformer(cfg)
    model(torch.randint(0, VOCAB, (2, 16)))
    model.balance_loss().backward()
    assert model.moe_layers()[0].router.weight.grad.abs().sum() > 0


# --- data ------------------------------------------------------------------------------------


def batches(shards, steps=40, seed=0, start=0, phases=None, batch_size=8):
    data = CurriculumBatches(shards, read_manifest(shards), seq_len=64, batch_size=batch_size,
                             phases=phases or Config().curriculum, total_steps=steps, seed=seed)
    it = data.batches(start)
    return data, [next(it) for _ in range(steps - start)]


def test_curriculum_is_a_pure_function_of_seed_and_step(shards):
    data, straight = batches(shards)
    _, again = batches(shards)
    _, resumed = batches(shards, start=25)
    _, other_seed = batches(shards, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(straight, again))
    assert all(np.array_equal(a, b) for a, b in zip(straight[25:], resumed))
    assert not all(np.array_equal(a, b) for a, b in zip(straight, other_seed))
    assert straight[0].shape == (8, 65) and straight[0].dtype == np.int64
    assert [data.curriculum.phase_at(s) for s in (0, 11, 12, 27, 28, 39)] == [0, 0, 1, 1, 2, 2]


def test_windows_are_runs_of_their_bucket_stream(shards):
    data, out = batches(shards)
    names = data.curriculum.buckets
    code = names.index("code")
    chosen = [data.curriculum.buckets_for(0, step, 8) for step in range(40)]
    assert not any(code in c for c in chosen[:12])  # phase 1 has no code
    assert any(code in c for c in chosen[28:])  # the last phase has
    streams = [np.concatenate(s.parts).astype("<u2").tobytes() for s in data.streams]
    for step in (0, 20, 39):
        for row, bucket in zip(out[step], chosen[step]):
            assert row.astype("<u2").tobytes() in streams[bucket]
    assert any((batch == EOS).any() for batch in out)  # document ends stay marked


def test_missing_buckets_get_weight_zero_and_weights_renormalise(tmp_path):
    shards = make_shards(tmp_path, names=("general", "code"), files_per_bucket=1)
    phases = [Phase(fraction=0.5, weights={"easy": 0.9, "general": 0.1}), Phase(fraction=0.5, weights={"easy": 1.0})]
    data, _ = batches(shards, steps=10, phases=phases)
    assert data.curriculum.weights[0].tolist() == [1.0, 0.0]
    # a phase with none of its buckets present falls back to mixing what exists by size
    assert data.curriculum.fallbacks == [1]
    assert data.curriculum.weights[1].sum() == pytest.approx(1.0) and (data.curriculum.weights[1] > 0).all()
    assert "mixed by size" in data.curriculum.describe()


def test_learning_rate_schedule():
    cfg = tiny(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-4).train
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(99, cfg) == pytest.approx(1e-4)
    assert learning_rate(10, cfg) > learning_rate(50, cfg) > learning_rate(90, cfg)


# --- training --------------------------------------------------------------------------------


@pytest.mark.slow
def test_loss_falls(shards, tmp_path):
    records = train(tiny(steps=50, log_every=5), shards, device="cpu", log_path=tmp_path / "log.jsonl", echo=quiet)
    assert len(records) == 10
    assert records[0]["loss"] > 4.5  # about ln(257) = 5.55 at the start
    assert records[-1]["loss"] < records[0]["loss"] - 1.5
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == records
    r = records[-1]
    assert r["tokens_per_s"] > 0 and 0 <= r["data_wait"] < 1 and r["phase"] == 3 and len(r["imbalance"]) == 2


@pytest.mark.slow
def test_routing_bias_lowers_load_imbalance(shards):
    def late_imbalance(rate):
        records = train(tiny(steps=60, bias_update_rate=rate, log_every=10), shards, device="cpu", echo=quiet)
        return float(np.mean([np.mean(r["imbalance"]) for r in records[-3:]]))

    # Same data, seed and initial weights; only the bias update differs (None: the default, 10 x lr).
    without, with_bias = late_imbalance(0.0), late_imbalance(None)
    print(f"imbalance (max/mean load) over steps 31-60: bias off {without:.3f}, on {with_bias:.3f}")
    assert with_bias < without
    assert with_bias < 1.5


# The defaults include the routing-bias rule (10 x lr); the others add one option each.
RESUME_OPTIONS = {"defaults": {}, "mla": {"attention": "mla", "q_latent_dim": 32}, "mtp": {"mtp_depth": 2},
                  "seq_aux": {"balance_loss_coef": 1e-4}}


@pytest.mark.slow
@pytest.mark.parametrize("option", list(RESUME_OPTIONS))
def test_resume_gives_the_same_losses_bit_for_bit(shards, tmp_path, option):
    k = 6
    config = tiny(steps=2 * k, checkpoint_every=k, model=RESUME_OPTIONS[option])
    straight = train(config, shards, device="cpu", checkpoint_dir=tmp_path / "a", echo=quiet)
    first = train(config, shards, device="cpu", checkpoint_dir=tmp_path / "b", stop_after=k, echo=quiet)
    assert torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)["step"] == k
    assert [r["loss"] for r in first] == [r["loss"] for r in straight[:k]]

    if option == "defaults":
        # the second half in a new process, through the CLI, with the same config as a YAML file
        (tmp_path / "config.yaml").write_text(json.dumps(config.model_dump(exclude={"model": {"vocab_size"}})))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, "-c", "from curate.cli.train import train; train()", "--shards", str(shards),
                        "--config", str(tmp_path / "config.yaml"), "--device", "cpu", "--checkpoint",
                        str(tmp_path / "b")], check=True, env=env, capture_output=True)
    else:
        train(config, shards, device="cpu", checkpoint_dir=tmp_path / "b", echo=quiet)
    logged = [json.loads(line) for line in (tmp_path / "b" / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(1, 2 * k + 1))
    assert [r["loss"] for r in logged] == [r["loss"] for r in straight]  # exact float equality
    assert [r.get("mtp_loss") for r in logged] == [r.get("mtp_loss") for r in straight]

    a = torch.load(tmp_path / "a" / CHECKPOINT_NAME, weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)  # weights and routing biases
    assert any(key.endswith("router.bias") and a[key].abs().sum() > 0 for key in a)


def test_resume_refuses_a_different_config(shards, tmp_path):
    train(tiny(steps=2), shards, device="cpu", checkpoint_dir=tmp_path, echo=quiet)
    with pytest.raises(UserError, match=r"different config \(train\.lr\)"):
        train(tiny(steps=2, lr=1e-2), shards, device="cpu", checkpoint_dir=tmp_path, echo=quiet)
    lines = []
    assert train(tiny(steps=2), shards, device="cpu", checkpoint_dir=tmp_path, echo=lines.append) == []
    assert "nothing to do" in lines[-1]


# --- CLI -------------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(train_command, [str(a) for a in args])


def test_cli_trains_and_logs(shards, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {d_model: 32, n_layer: 1, n_head: 2, seq_len: 32, expert_hidden: 32}\n"
                      "train: {batch_size: 4, micro_batch_size: 4, log_every: 1, threads: 1, lr: 3e-3}\n")  # 3e-3: a float
    result = invoke("--shards", shards, "--config", config, "--steps", 3, "--device", "cpu", "--checkpoint", tmp_path / "ck")
    assert result.exit_code == 0, result.output
    assert "step 3/3 | loss" in result.output and "imbalance" in result.output
    assert len((tmp_path / "ck" / "train.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "ck" / CHECKPOINT_NAME).is_file()


@pytest.mark.parametrize("yaml_text, message", [
    ("model: {d_modle: 64}", "model.d_modle: unknown key"),
    ("train: {lr: fast}", "train.lr: Input should be a valid number"),
    ("train: {steps: 1.5}", "train.steps: Input should be a valid integer"),
    ("model: {vocab_size: 300}", "comes from the shards manifest"),
    ("curriculum: [{fraction: 0.5, weights: {easy: 1.0}}]", "add up to 1"),
    ("model: {d_model: 64, n_head: 3}", "even size"),
    ("model: [1, 2", "cannot read YAML"),
])
def test_cli_config_mistakes_are_one_line_and_exit_2(shards, tmp_path, yaml_text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result = invoke("--shards", shards, "--config", config)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_input_mistakes_are_one_line_and_exit_2(shards, tmp_path):
    for args, message in [
        (("--shards", tmp_path / "nowhere"), "shards directory not found"),
        (("--shards", tmp_path), "manifest.json: missing"),
        (("--shards", shards, "--config", tmp_path / "none.yaml"), "config file not found"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_cli_without_torch_says_how_to_install_it(shards, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    result = invoke("--shards", shards)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {TORCH_MISSING}"


def test_builtin_configs_are_valid():
    for path in sorted((ROOT / "configs" / "train").glob("*.yaml")):
        config = load_config(path)
        assert config.model.d_model % config.model.n_head == 0, path
