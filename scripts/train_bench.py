"""Throughput of `curate train`: tokens/s, MFU and data-wait share for N steps of a config.

    python scripts/train_bench.py --config tiny --steps 40
    python scripts/train_bench.py --config configs/train/moe-100m.yaml --device cuda --steps 60
    python scripts/train_bench.py --config tiny --compare-experts
    python scripts/train_bench.py --config moe-100m --device cuda --attention mla --mtp-depth 1

--attention and --mtp-depth override the config's model.attention and model.mtp_depth, so one
config measures MHA against MLA, with and without multi-token prediction.

Without --shards it writes random-token shards (all four buckets) to a temp folder. The first
log interval (start-up, allocator warm-up) is left out of the figures.

MFU = tokens/s * training FLOPs per token / peak FLOP/s, with FLOPs per token = 6 * active
parameters + 12 * layers * width * context (PaLM's convention; see model.flops_per_token).
The peak comes from --peak-tflops, or from the GPU's name for H100/H200 (989 dense bf16
TFLOP/s, SXM) and A100 (312). Peak memory: torch's allocator peak on CUDA, the process's
maximum resident set on CPU.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from curate.megatron import (Bucket, IndexedDatasetWriter, Manifest, ShardFile, read_manifest, token_dtype,
                             write_manifest)
from curate.trainer.config import load_config
from curate.trainer.model import MoETransformer, RoutedExperts, flops_per_token, parameter_counts
from curate.trainer.train import cpu_threads, train

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def random_shards(folder: Path, vocab_size: int, tokens_per_bucket: int, seed: int = 0) -> Path:
    """Four buckets of random documents (lengths 50-2000 tokens, each ending with EOS = 0)."""
    rng = np.random.default_rng(seed)
    dtype = token_dtype(vocab_size)
    buckets = []
    for name in ("easy", "general", "reasoning", "code"):
        lengths = rng.integers(50, 2000, size=tokens_per_bucket // 1000 + 1)
        tokens = rng.integers(1, vocab_size, size=int(lengths.sum()))
        tokens[np.cumsum(lengths) - 1] = 0
        (folder / name).mkdir(parents=True, exist_ok=True)
        with IndexedDatasetWriter(folder / name / "part-00000", dtype) as w:
            w.add_documents(tokens, lengths)
        part = ShardFile(f"{name}/part-00000.bin", f"{name}/part-00000.idx", f"{name}/part-00000.parquet",
                         w.documents, w.tokens)
        buckets.append(Bucket(name, w.documents, w.tokens, (part,)))
    write_manifest(folder, Manifest("tokenizer.json", "random", dtype.name, 0, vocab_size, tuple(buckets)))
    return folder


def peak_tflops(device: str, given: float | None) -> float | None:
    if given:
        return given
    if device != "cpu" and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)
    return None


def peak_memory_gib(device: str) -> float:
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def bench_training(args) -> None:
    config = load_config(args.config, args.steps)
    log_every = max(1, args.steps // 8)
    model_options = {key: value for key, value in (("attention", args.attention), ("mtp_depth", args.mtp_depth))
                     if value is not None}
    config = config.model_copy(update={"train": config.train.model_copy(update={"log_every": log_every}),
                                       "model": config.model.model_copy(update=model_options)})
    tokens_needed = args.steps * config.train.batch_size * config.model.seq_len
    with tempfile.TemporaryDirectory() as tmp:
        if args.shards:
            shards, vocab = Path(args.shards), read_manifest(args.shards).vocab_size
        else:
            shards, vocab = random_shards(Path(tmp), args.vocab, max(200_000, tokens_needed // 2)), args.vocab
        records = train(config, shards, device=args.device, echo=print)
    model_cfg = config.model.model_copy(update={"vocab_size": vocab})
    measured = records[1:] or records  # the first interval includes warm-up
    tokens_per_s = statistics.mean(r["tokens_per_s"] for r in measured)
    data_wait = statistics.mean(r["data_wait"] for r in measured)
    with torch.device("meta"):  # only the parameter count is wanted
        _, active = parameter_counts(MoETransformer(model_cfg))
    flops = flops_per_token(model_cfg, active)
    options = f"attention {model_cfg.attention}, mtp_depth {model_cfg.mtp_depth}"
    print(f"\nconfig {args.config or 'the defaults'} ({options}): {active / 1e6:.2f}M active parameters, "
          f"{flops / 1e6:.1f} MFLOP per token")
    print(f"tokens/s {tokens_per_s:,.0f}   data wait {100 * data_wait:.2f}%   "
          f"achieved {tokens_per_s * flops / 1e12:.4f} TFLOP/s   peak memory {peak_memory_gib(args.device):.2f} GiB")
    peak = peak_tflops(args.device, args.peak_tflops)
    if peak:
        print(f"MFU {100 * tokens_per_s * flops / (peak * 1e12):.2f}% of {peak:g} TFLOP/s")
    else:
        print("MFU: give --peak-tflops for this device")


def looped_experts(experts: RoutedExperts, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The same computation as RoutedExperts.forward, one matmul pair per expert."""
    outputs = []
    for e, rows in enumerate(x.split(counts.tolist())):
        gate, up = (rows @ experts.gate_up[e]).chunk(2, dim=-1)
        outputs.append((F.silu(gate) * up) @ experts.down[e])
    return torch.cat(outputs)


def padded_experts(experts: RoutedExperts, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The same computation as one batched matmul over [E, max count, d], zero-padded."""
    n_experts = counts.numel()
    expert_of_row = torch.repeat_interleave(torch.arange(n_experts), counts)
    slot = torch.arange(x.shape[0]) - (counts.cumsum(0) - counts)[expert_of_row]
    padded = x.new_zeros(n_experts, int(counts.max()), x.shape[1]).index_put((expert_of_row, slot), x)
    gate, up = torch.bmm(padded, experts.gate_up).chunk(2, dim=-1)
    return torch.bmm(F.silu(gate) * up, experts.down)[expert_of_row, slot]


def compare_experts(args) -> None:
    config = load_config(args.config)
    cfg = config.model
    tokens = config.train.micro_batch_size * cfg.seq_len
    torch.set_num_threads(cpu_threads(config.train.threads))
    experts = RoutedExperts(cfg.n_routed_experts, cfg.d_model, cfg.expert_hidden)
    for p in experts.parameters():
        torch.nn.init.normal_(p, 0, 0.02)
    rng = np.random.default_rng(0)
    skews = {"even": np.ones(cfg.n_routed_experts), "skewed": 1 / np.arange(1, cfg.n_routed_experts + 1)}
    print(f"routed experts of {args.config or 'the defaults'}: {tokens} tokens x top-{cfg.top_k} of {cfg.n_routed_experts}, "
          f"d {cfg.d_model}, hidden {cfg.expert_hidden}, {torch.get_num_threads()} threads; forward + backward")
    for label, weights in skews.items():
        choice = rng.choice(cfg.n_routed_experts, size=tokens * cfg.top_k, p=weights / weights.sum())
        counts = torch.from_numpy(np.bincount(choice, minlength=cfg.n_routed_experts))
        x = torch.randn(tokens * cfg.top_k, cfg.d_model, requires_grad=True)
        variants = {"grouped_mm": lambda: experts(x, counts), "loop": lambda: looped_experts(experts, x, counts),
                    "padded bmm": lambda: padded_experts(experts, x, counts)}
        timings = _time_interleaved({name: lambda run=run: run().square().sum().backward() for name, run in variants.items()})
        best = min(timings.values())
        cells = "   ".join(f"{name} {ms:.2f} ms ({ms / best:.2f}x)" for name, ms in timings.items())
        print(f"  {label:6s} load (imbalance {counts.max() / counts.float().mean():.2f}): {cells}")


def _time_interleaved(fns: dict, repeats: int = 20) -> dict[str, float]:
    """Median milliseconds of each function, taking turns so that a busy machine slows all alike."""
    times = {name: [] for name in fns}
    for round_ in range(repeats + 3):  # 3 warm-up rounds
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= 3:
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="train config file or built-in name (default: the defaults)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--shards", default=None, help="real shards to read (default: random tokens)")
    parser.add_argument("--vocab", type=int, default=32000, help="vocabulary of the random shards")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--attention", choices=["mha", "mla"], default=None, help="override model.attention")
    parser.add_argument("--mtp-depth", type=int, default=None, help="override model.mtp_depth (0 = no MTP)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    parser.add_argument("--compare-experts", action="store_true",
                        help="time the routed experts as grouped_mm, a loop over experts and a padded bmm")
    args = parser.parse_args()
    if args.compare_experts:
        compare_experts(args)
    else:
        bench_training(args)


if __name__ == "__main__":
    main()
