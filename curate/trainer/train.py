"""The training loop of `curate train`, written out rather than hidden in a framework.

One step: take the step's batch from the prefetch thread, run forward and backward on each
micro-batch, clip the gradient norm, take an AdamW step at the scheduled learning rate, then
move the routing biases by the step's expert loads. Every `checkpoint_every` steps the model,
optimizer, step, RNG state and routing biases are written atomically; restarting with the same
checkpoint directory continues from there, and on CPU gives the very losses, bit for bit, that
an uninterrupted run gives. Ctrl-C (SIGINT) finishes the step under way, writes a checkpoint and
stops.

Extending a run (a larger --steps than the checkpoint was written with) continues it: the
learning rate goes on from its value at the checkpoint's step along a cosine down to min_lr at
the new last step (so a finished run, already at min_lr, stays there: no re-warming), and the
curriculum keeps the phases of the first plan, later steps staying in its last phase, so the
batches already drawn stay the ones drawn.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from curate import storage
from curate.errors import UserError
from curate.megatron import Manifest, read_manifest
from curate.trainer.config import BIAS_RATE_PER_LR, Config, TrainConfig, parse_config
from curate.trainer.data import CurriculumBatches, Prefetcher
from curate.trainer.model import MoETransformer, parameter_counts

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train.jsonl"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this torch sees no CUDA device")
    return torch.device(name)


def cpu_threads(configured: int) -> int:
    if configured:
        return configured
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def learning_rate(step: int, cfg: TrainConfig, restart: tuple[int, float] | None = None) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.min_lr at the last step.

    restart (step s, rate r), set when a run is extended after its decay began: from step s on,
    a cosine from r to min_lr at the new last step."""
    if restart is not None and step >= restart[0]:
        begin, rate = restart
        progress = (step - begin) / max(1, cfg.steps - 1 - begin)
        return cfg.min_lr + 0.5 * (rate - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # Decay the matrices only: norm gains (and biases, had we any) are vectors.
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": cfg.weight_decay}, {"params": vectors, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


def shards_fingerprint(manifest: Manifest) -> dict:
    """What a checkpoint remembers of its shards, to refuse resuming on different ones."""
    return {"tokenizer_sha256": manifest.tokenizer_sha256, "buckets": {b.name: b.tokens for b in manifest.buckets}}


def save_checkpoint(path: Path, model, optimizer, step: int, config: Config, manifest: Manifest,
                    plan: dict) -> None:
    state = {
        "step": step,  # steps done; the next one to run
        "model": model.state_dict(),  # includes every layer's routing bias (a buffer)
        "optimizer": optimizer.state_dict(),
        "config": config.model_dump(),
        "plan": plan,  # the curriculum's steps and the learning-rate restart, if extended
        "shards": shards_fingerprint(manifest),
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }
    with storage.Staged(path) as tmp:  # a kill during save leaves the previous checkpoint intact
        torch.save(state, tmp)


def load_checkpoint(path: Path, model, optimizer, config: Config, manifest: Manifest) -> tuple[int, int, dict]:
    """Restore a checkpoint into model and optimizer; returns the step to continue from, the
    train.steps it was written with and its plan. Only train.steps may differ from `config`."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = parse_config(state["config"], str(path))
    now, then = _flatten(config.model_dump()), _flatten(saved.model_dump())
    changed = [key for key in now if now[key] != then.get(key) and key != "train.steps"]
    if changed:
        raise UserError(f"{path} was written with a different config ({', '.join(changed)}); "
                        "use the same config or another --checkpoint directory")
    if state["shards"] != shards_fingerprint(manifest):
        raise UserError(f"{path} was trained on other shards (tokenizer or bucket sizes differ)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    plan = state.get("plan") or {"curriculum_steps": saved.train.steps, "lr_restart": None}
    return state["step"], saved.train.steps, plan


def extend_plan(plan: dict, start: int, old: TrainConfig, new: TrainConfig) -> tuple[dict, str]:
    """The plan of a run resumed at `start` with train.steps changed from old.steps to
    new.steps, and the line that tells the user what happens to the schedule."""
    restart = tuple(plan["lr_restart"]) if plan["lr_restart"] else None
    if start <= new.warmup_steps:  # the decay has not begun: the plain schedule of the new length
        return {**plan, "lr_restart": None}, f"train.steps {old.steps} -> {new.steps}: the cosine decay will span {new.steps} steps"
    rate = learning_rate(start, old, restart)
    note = (f"train.steps {old.steps} -> {new.steps} at step {start}: the learning rate goes on from {rate:.2e} "
            f"along a cosine to min_lr {new.min_lr:.2e} at step {new.steps}; the curriculum keeps its "
            f"{plan['curriculum_steps']}-step phases (later steps stay in the last phase)")
    return {**plan, "lr_restart": [start, rate]}, note


def _flatten(tree: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1}} -> {"train.lr": 1}"""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def imbalance(load: torch.Tensor) -> float:
    """max / mean tokens per expert: 1.0 is a perfect balance, E / top_k the worst."""
    load = load.float()
    return float(load.max() / load.mean().clamp(min=1e-9))


class CollapseWatch:
    """Warns when a MoE layer's imbalance stays above LIMIT for PATIENCE log intervals in a row
    (a short excursion right after warmup, while the bias catches up, is normal)."""

    LIMIT, PATIENCE = 2.0, 5

    def __init__(self, n_experts: int, top_k: int, echo: Callable[[str], None]):
        self.worst, self.top_k, self.n_experts, self.echo = n_experts / top_k, top_k, n_experts, echo
        self.streaks: list[int] = []

    def __call__(self, imbalances: list[float]) -> None:
        self.streaks = self.streaks or [0] * len(imbalances)
        for layer, value in enumerate(imbalances):
            self.streaks[layer] = self.streaks[layer] + 1 if value > self.LIMIT else 0
            if self.streaks[layer] == self.PATIENCE:
                self.echo(f"warning: MoE layer {layer + 1} has had a load imbalance above {self.LIMIT:g} for "
                          f"{self.PATIENCE} log intervals (now {value:.2f}; 1.0 is an even load, {self.worst:g} "
                          f"means every token goes to the same {self.top_k} of {self.n_experts} experts): its "
                          "routing is collapsing; if it lasts, raise train.bias_update_rate or "
                          "model.balance_loss_coef")


@contextlib.contextmanager
def stop_on_sigint():
    """While active, SIGINT sets the event instead of raising, so the loop can stop between
    steps with a consistent state to save; a second SIGINT raises at once."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested  # signals reach the main thread only
        return

    def handle(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def train(config: Config, shards_dir: str | Path, *, device: str = "auto", checkpoint_dir: str | Path | None = None,
          log_path: str | Path | None = None, stop_after: int | None = None,
          echo: Callable[[str], None] = print) -> list[dict]:
    """Train on the shards in shards_dir; returns the logged records.

    checkpoint_dir: where checkpoints go, and the run resumes from if one is there.
    log_path: the JSONL log; default checkpoint_dir/train.jsonl, none without either.
    stop_after: stop once this many steps are done, as if interrupted; the LR schedule and the
    curriculum still span config.train.steps (for jobs with a time limit, and for tests)."""
    shards_dir = Path(shards_dir)
    manifest = read_manifest(shards_dir)
    config = config.model_copy(update={"model": config.model.model_copy(update={"vocab_size": manifest.vocab_size})})
    cfg = config.train
    dev = pick_device(device)
    torch.set_num_threads(cpu_threads(cfg.threads))

    torch.manual_seed(cfg.seed)
    model = MoETransformer(config.model).to(dev)
    optimizer = make_optimizer(model, cfg, dev)
    start, plan = 0, {"curriculum_steps": cfg.steps, "lr_restart": None}
    checkpoint = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if checkpoint:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if checkpoint.is_file():
            start, saved_steps, plan = load_checkpoint(checkpoint, model, optimizer, config, manifest)
            echo(f"resuming from {checkpoint} at step {start}")
            if saved_steps != cfg.steps and start < cfg.steps:
                plan, note = extend_plan(plan, start, cfg.model_copy(update={"steps": saved_steps}), cfg)
                echo(note)
    end = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    if start >= end:
        echo(f"nothing to do: {checkpoint} is at step {start}, the run ends at step {end}")
        return []
    if cfg.warmup_steps >= cfg.steps:
        echo(f"warning: warmup_steps {cfg.warmup_steps} >= steps {cfg.steps}: the learning rate never "
             f"reaches train.lr {cfg.lr:g} (it ends at {learning_rate(cfg.steps - 1, cfg):.2e})")
    data = CurriculumBatches(shards_dir, manifest, seq_len=config.model.seq_len, batch_size=cfg.batch_size,
                             phases=config.curriculum, total_steps=plan["curriculum_steps"], seed=cfg.seed)
    restart = tuple(plan["lr_restart"]) if plan["lr_restart"] else None
    if log_path is None and checkpoint:
        log_path = checkpoint.parent / LOG_NAME
    log_file = open(log_path, "a", encoding="utf-8") if log_path else None

    total_params, active_params = parameter_counts(model)
    echo(f"model: {total_params / 1e6:.2f}M parameters, {active_params / 1e6:.2f}M active per token; "
         f"device {dev}, {torch.get_num_threads()} CPU threads")
    echo(data.curriculum.describe())
    mode = f"unset: {BIAS_RATE_PER_LR:g} x lr" if cfg.bias_update_rate is None else "train.bias_update_rate"
    echo(f"routing bias: moves {cfg.bias_rate:.2e} per step ({mode}); sequence-wise balance loss "
         + (f"alpha {config.model.balance_loss_coef:g}" if config.model.balance_loss_coef else "off"))

    pin = dev.type == "cuda"
    prefetch = Prefetcher((torch.from_numpy(b).pin_memory() if pin else torch.from_numpy(b)
                           for b in data.batches(start)), depth=cfg.prefetch)
    # bf16 autocast on CUDA: matmuls in bf16, weights and optimizer state stay fp32.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if pin else contextlib.nullcontext()
    accumulation = cfg.batch_size // cfg.micro_batch_size
    tokens_per_step = cfg.batch_size * config.model.seq_len
    model.train()
    records = []
    watch = CollapseWatch(config.model.n_routed_experts, config.model.top_k, echo)
    interval_loss, interval_mtp, interval_loads, interval_steps, waited = 0.0, 0.0, None, 0, 0.0
    clock = time.perf_counter()
    saved_at = start
    exits = contextlib.ExitStack()
    stop = exits.enter_context(stop_on_sigint())
    try:
        for step in range(start, end):
            lr = learning_rate(step, cfg, restart)
            for group in optimizer.param_groups:
                group["lr"] = lr

            t = time.perf_counter()
            batch = prefetch.get()
            waited += time.perf_counter() - t
            batch = batch.to(dev, non_blocking=True)

            step_loss = torch.zeros((), device=dev)
            step_mtp = torch.zeros(config.model.mtp_depth, device=dev)
            step_loads = [torch.zeros_like(m.router.bias, dtype=torch.long) for m in model.moe_layers()]
            for micro in batch.split(cfg.micro_batch_size):
                inputs, targets = micro[:, :-1], micro[:, 1:]  # each [micro, seq_len]
                with autocast:
                    _, loss = model(inputs, targets)
                    objective = loss + model.balance_loss() + model.mtp_loss()
                (objective / accumulation).backward()
                step_loss += loss.detach() / accumulation
                if model.mtp:
                    step_mtp += model.mtp_losses.detach() / accumulation
                for total, moe in zip(step_loads, model.moe_layers()):
                    total += moe.load
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if cfg.bias_rate > 0:
                model.update_routing_bias(step_loads, cfg.bias_rate)

            interval_loss += step_loss
            interval_mtp += step_mtp
            interval_loads = [a + b for a, b in zip(interval_loads, step_loads)] if interval_loads else step_loads
            interval_steps += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == end:
                loss_value = float(interval_loss) / interval_steps  # waits for the GPU: the clock is honest
                elapsed = time.perf_counter() - clock
                record = {
                    "step": done,
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens_per_s": interval_steps * tokens_per_step / elapsed,
                    "data_wait": waited / elapsed,
                    "phase": data.curriculum.phase_at(step) + 1,
                    "imbalance": [round(imbalance(load), 4) for load in interval_loads],
                }
                if model.mtp:  # "loss" stays the next-token loss, comparable with runs without MTP
                    record["mtp_loss"] = [float(x) / interval_steps for x in interval_mtp]
                records.append(record)
                echo(format_record(record, cfg.steps))
                watch(record["imbalance"])
                if log_file:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                interval_loss, interval_mtp, interval_loads, interval_steps, waited = 0.0, 0.0, None, 0, 0.0
                clock = time.perf_counter()
            if checkpoint and (done % cfg.checkpoint_every == 0 or done == end or stop.is_set()):
                t = time.perf_counter()
                save_checkpoint(checkpoint, model, optimizer, done, config, manifest, plan)
                saved_at = done
                clock += time.perf_counter() - t  # the save is not training time
            if stop.is_set() and done < end:
                where = f"checkpoint at step {saved_at} in {checkpoint}" if checkpoint else "no checkpoint written"
                echo(f"interrupted after step {done}: {where}")
                raise KeyboardInterrupt
    finally:
        exits.close()
        prefetch.close()
        if log_file:
            log_file.close()
    return records


def format_record(r: dict, steps: int) -> str:
    layers = " ".join(f"{x:.2f}" for x in r["imbalance"])
    return (f"step {r['step']:>{len(str(steps))}}/{steps} | loss {r['loss']:.4f} | lr {r['lr']:.2e} | "
            f"{r['tokens_per_s']:,.0f} tok/s | data wait {100 * r['data_wait']:.1f}% | phase {r['phase']} | "
            f"imbalance {layers}" + "".join(f" | mtp{k} {x:.4f}" for k, x in enumerate(r.get("mtp_loss", []), 1)))
