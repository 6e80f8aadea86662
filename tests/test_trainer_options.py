"""The trainer's DeepSeek options and run control: latent attention (MLA), multi-token prediction
(MTP), extending a finished run, Ctrl-C, and the warnings. Small byte-level models as in
tests/test_trainer.py (its shards and configs are reused), one torch thread."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from curate.cli.train import train as train_command  # noqa: E402
from curate.trainer.attention import kv_cache_values_per_token  # noqa: E402
from curate.trainer.config import ModelConfig  # noqa: E402
from curate.trainer.model import MoETransformer, parameter_counts  # noqa: E402
from curate.trainer.train import CHECKPOINT_NAME, CollapseWatch, train  # noqa: E402
from test_trainer import VOCAB, make_shards, quiet, tiny  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"), names=("easy", "general"), files_per_bucket=1)


def model_of(**kw) -> MoETransformer:
    torch.manual_seed(0)
    cfg = dict(vocab_size=VOCAB, d_model=64, n_head=4, n_layer=2, seq_len=32, expert_hidden=32)
    return MoETransformer(ModelConfig(**{**cfg, **kw})).eval()


# --- multi-head latent attention -------------------------------------------------------------


@pytest.mark.parametrize("q_latent_dim", [0, 32])
def test_mla_shapes_and_causality(q_latent_dim):
    model = model_of(attention="mla", kv_latent_dim=32, rope_head_dim=8, q_latent_dim=q_latent_dim)
    attn = model.blocks[0].attn
    x = torch.randn(2, 32, 64)
    cos, sin = model.rope_cos, model.rope_sin
    assert model.rope_cos.shape == (32, 4)  # tables for the decoupled rotary part only
    y = attn(x, cos, sin)
    assert y.shape == x.shape
    assert attn.kv_down.out_features == 32 + 8  # what a cache keeps per token and layer
    t = 20
    changed = x.clone()
    changed[:, t] += torch.randn(64)
    y2 = attn(changed, cos, sin)
    assert torch.equal(y2[:, :t], y[:, :t])  # nothing before t sees the change
    assert not torch.allclose(y2[:, t], y[:, t])

    # and through the whole model: logits before t do not depend on the token at t
    tokens = torch.randint(0, VOCAB, (1, 32))
    other = tokens.clone()
    other[0, t] = (other[0, t] + 1) % VOCAB
    a, b = model(tokens)[0], model(other)[0]
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, t:], b[:, t:])


def test_mla_caches_fewer_bytes_per_token_than_mha(capsys):
    # moe-100m's width: 12 heads of 64; MLA with V2's proportions (latent 4 x head dim, rotary half a head)
    mha = ModelConfig(d_model=768, n_head=12, n_layer=8)
    mla = ModelConfig(d_model=768, n_head=12, n_layer=8, attention="mla")
    bf16 = 2
    mha_bytes, mla_bytes = bf16 * kv_cache_values_per_token(mha), bf16 * kv_cache_values_per_token(mla)
    with capsys.disabled():
        print(f"\nKV cache per token, 8 layers of width 768, bf16: MHA {mha_bytes:,} bytes, "
              f"MLA (latent {mla.mla_kv_dim} + rotary {mla.mla_rope_dim}) {mla_bytes:,} bytes, "
              f"{mha_bytes / mla_bytes:.1f}x less")
    assert mha_bytes == 8 * 2 * 768 * 2
    assert mla_bytes == 8 * (256 + 32) * 2
    # the module really produces that much per token and layer
    layer = MoETransformer(mla.model_copy(update={"vocab_size": VOCAB, "n_layer": 1})).blocks[0].attn
    assert layer.kv_down.out_features == kv_cache_values_per_token(mla) // 8


def test_mla_settings_need_mla():
    with pytest.raises(ValueError, match="kv_latent_dim: only for attention: mla"):
        ModelConfig(kv_latent_dim=64)
    with pytest.raises(ValueError, match="must be even"):
        ModelConfig(attention="mla", rope_head_dim=6 + 1)


# --- multi-token prediction ------------------------------------------------------------------


def test_mtp_depth_zero_is_the_plain_model_and_depth_one_leaves_it_unchanged():
    plain, none, one = model_of(), model_of(mtp_depth=0), model_of(mtp_depth=1)
    assert not any("mtp" in key for key in none.state_dict())
    assert list(plain.state_dict()) == list(none.state_dict())
    extra = [key for key in one.state_dict() if key.startswith("mtp.")]
    assert extra and set(one.state_dict()) - set(extra) == set(plain.state_dict())
    # the MTP modules are built after the main model: its initial weights do not change
    assert all(torch.equal(value, one.state_dict()[key]) for key, value in plain.state_dict().items())
    tokens = torch.randint(0, VOCAB, (2, 32))
    logits, loss = plain(tokens, tokens)
    logits1, loss1 = one(tokens, tokens)
    assert torch.equal(logits, logits1) and torch.equal(loss, loss1)  # the main loss is apart
    assert plain.mtp_loss() == 0.0 and one.mtp_losses.shape == (1,)
    assert parameter_counts(one)[0] > parameter_counts(plain)[0]


def test_mtp_depth_k_predicts_the_token_k_plus_1_ahead():
    model = model_of(mtp_depth=2)
    tokens = torch.randint(0, VOCAB, (1, 32))
    model(tokens, tokens)
    # changing the last input token changes depth 2's loss only through its embedding input at
    # position 29 (29 + 2 = 31), and changing the last target changes depth 1 and depth 2's targets
    base = model.mtp_losses.clone()
    targets = tokens.clone()
    targets[0, -1] = (targets[0, -1] + 1) % VOCAB
    model(tokens, targets)
    assert not torch.equal(model.mtp_losses, base)
    targets = tokens.clone()
    targets[0, 0] = (targets[0, 0] + 1) % VOCAB  # position 0's next token: no MTP depth targets it
    model(tokens, targets)
    assert torch.equal(model.mtp_losses, base)


@pytest.mark.slow
def test_mtp_loss_falls_and_is_logged_apart(shards):
    config = tiny(steps=30, log_every=10, model={"mtp_depth": 1, "mtp_weight": 0.3})
    records = train(config, shards, device="cpu", echo=quiet)
    assert all(len(r["mtp_loss"]) == 1 for r in records)
    assert records[-1]["mtp_loss"][0] < records[0]["mtp_loss"][0] - 0.5
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert records[-1]["mtp_loss"][0] != records[-1]["loss"]


# --- extending and interrupting runs ---------------------------------------------------------


@pytest.mark.slow
def test_extending_a_finished_run_continues_it(shards, tmp_path):
    lines = []
    first = train(tiny(steps=8, checkpoint_every=4), shards, device="cpu", checkpoint_dir=tmp_path / "a", echo=quiet)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    extended = train(tiny(steps=14, checkpoint_every=4), shards, device="cpu", checkpoint_dir=tmp_path / "a",
                     echo=lines.append)
    assert [r["step"] for r in extended] == list(range(9, 15))
    assert any("train.steps 8 -> 14 at step 8: the learning rate goes on from" in line for line in lines)
    # the finished run was at min_lr; it stays there rather than warming up again
    assert all(r["lr"] == pytest.approx(first[-1]["lr"], rel=0.2) for r in extended)
    assert extended[0]["lr"] <= first[-1]["lr"] * 1.2

    # an extension that is itself interrupted and resumed gives the same losses
    part = train(tiny(steps=14, checkpoint_every=4), shards, device="cpu", checkpoint_dir=tmp_path / "b",
                 stop_after=11, echo=quiet)
    rest = train(tiny(steps=14, checkpoint_every=4), shards, device="cpu", checkpoint_dir=tmp_path / "b", echo=quiet)
    assert [r["loss"] for r in part + rest] == [r["loss"] for r in extended]
    assert [r["lr"] for r in part + rest] == [r["lr"] for r in extended]


@pytest.mark.slow
def test_extending_mid_decay_keeps_the_learning_rate_continuous(shards, tmp_path):
    config = tiny(steps=20, warmup_steps=2, checkpoint_every=10)
    straight = train(config, shards, device="cpu", echo=quiet)
    train(config, shards, device="cpu", checkpoint_dir=tmp_path, stop_after=10, echo=quiet)
    longer = train(tiny(steps=40, warmup_steps=2, checkpoint_every=10), shards, device="cpu",
                   checkpoint_dir=tmp_path, stop_after=12, echo=quiet)
    lr_at_10 = straight[10]["lr"]  # the rate step 11 would have had
    assert longer[0]["lr"] == pytest.approx(lr_at_10)  # no jump at the extension
    assert longer[1]["lr"] < longer[0]["lr"] and longer[1]["lr"] > straight[11]["lr"]  # a slower decay


def test_warmup_longer_than_the_run_warns(shards):
    lines = []
    train(tiny(steps=3, warmup_steps=5), shards, device="cpu", echo=lines.append)
    assert any(line.startswith("warning: warmup_steps 5 >= steps 3") for line in lines)


def _interrupt_at(step, lines):
    def echo(line):
        lines.append(line)
        if re.match(rf"step +{step}/", line):
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C would, in the middle of the run
    return echo


def test_sigint_finishes_the_step_and_writes_a_checkpoint(shards, tmp_path):
    lines = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, Python's handler in a terminal
    with pytest.raises(KeyboardInterrupt):
        train(tiny(steps=50, checkpoint_every=100), shards, device="cpu", checkpoint_dir=tmp_path,
              echo=_interrupt_at(3, lines))
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["step"] == 3
    assert lines[-1].startswith("interrupted after step 3: checkpoint at step 3")
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_cli_says_resume_only_when_a_checkpoint_exists(shards, tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("model: {d_model: 32, n_layer: 1, n_head: 2, seq_len: 32, expert_hidden: 32}\n"
                      "train: {batch_size: 4, micro_batch_size: 4, log_every: 1, threads: 1, checkpoint_every: 100}\n")
    import curate.cli.train as cli_module  # noqa: F401  (the echo is click's: interrupt from a log line)
    import click

    original = click.echo

    def echo(message=None, *args, **kwargs):
        original(message, *args, **kwargs)
        if isinstance(message, str) and re.match(r"step +2/", message):
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(click, "echo", echo)
    runner = CliRunner()
    with_ck = runner.invoke(train_command, ["--shards", str(shards), "--config", str(config), "--device", "cpu",
                                            "--checkpoint", str(tmp_path / "ck")])
    assert with_ck.exit_code == 130, with_ck.output
    assert "run the same command again to resume" in with_ck.output
    assert torch.load(tmp_path / "ck" / CHECKPOINT_NAME, weights_only=True)["step"] == 2
    without = runner.invoke(train_command, ["--shards", str(shards), "--config", str(config), "--device", "cpu"])
    assert without.exit_code == 130
    assert "run the same command again" not in without.output and "nothing was saved" in without.output


def test_collapse_warning_says_what_the_worst_imbalance_means():
    lines = []
    watch = CollapseWatch(n_experts=8, top_k=2, echo=lines.append)
    for values in ([1.2, 2.5], [1.3, 3.9], [2.1, 4.0], [1.1, 4.0], [1.1, 4.0]):
        watch(values)
    assert len(lines) == 1  # layer 2 only, once per stretch above 2
    assert "MoE layer 2" in lines[0] and "4 means every token goes to the same 2 of 8 experts" in lines[0]


# --- what the configs say of themselves ------------------------------------------------------


def _stated_counts(text: str) -> list[float]:
    """[outside the embeddings, active, in all, active] at 32,000 tokens, as a comment states them."""
    text = " ".join(text.replace("#", " ").split())
    outside = re.search(r"([\d.]+)M outside the embeddings \(([\d.]+)M active", text)
    whole = re.search(r"([\d.]+)M in all \(([\d.]+)M active\) with [^,.]*?32,000-token", text)
    assert outside and whole, text[:400]
    return [float(x) for x in (*outside.groups(), *whole.groups())]


@pytest.mark.parametrize("name", ["tiny", "small", "moe-100m", None])
def test_config_comments_state_what_the_config_builds(name):
    from curate.trainer import config as config_module
    from curate.trainer.config import load_config

    root = Path(__file__).resolve().parents[1]
    text = (root / "configs" / "train" / f"{name}.yaml").read_text() if name else config_module.__doc__
    cfg = load_config(name).model.model_copy(update={"vocab_size": 32000})
    with torch.device("meta"):
        total, active = parameter_counts(MoETransformer(cfg))
    embedding = 32000 * cfg.d_model  # the input table; the output head is as large
    built = [(total - 2 * embedding) / 1e6, (active - embedding) / 1e6, total / 1e6, active / 1e6]
    assert _stated_counts(text) == pytest.approx([round(x, 2) for x in built], abs=0.006)
