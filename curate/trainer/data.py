"""Training batches from the shards: packed windows, a curriculum over buckets, prefetching.

- Packing: a bucket's documents, each already ending with EOS, are one token stream cut into
  windows of seq_len + 1 tokens (inputs and the targets shifted by one). Consecutive windows
  share one token, so each epoch every token is a target once (but the stream's first token and
  a tail shorter than a window). Attention is not masked at document ends; the EOS marks them.
- Curriculum: the run is split into phases (a fraction of the steps each) with mixing weights
  per bucket; each sample's bucket is drawn from its step's phase weights by an RNG seeded with
  (seed, step). Within a bucket, windows come in a shuffled order, a new one each epoch.
- Resuming: which bucket every sample of a step comes from is a pure function of (seed, step),
  and the position reached in each bucket is the number of earlier draws of it, recounted on
  start; so a resumed run reads exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import itertools
import queue
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from curate.megatron import IndexedDataset, Manifest, ShardFormatError
from curate.trainer.config import Phase


class BucketStream:
    """One bucket's parts as a single token stream, cut into overlapping windows."""

    def __init__(self, parts: list[np.ndarray], seq_len: int):
        self.parts = [p for p in parts if p.size]
        self.ends = np.cumsum([p.size for p in self.parts], dtype=np.int64)
        self.seq_len = seq_len
        tokens = int(self.ends[-1]) if self.parts else 0
        self.windows = max(0, (tokens - 1) // seq_len)

    def window(self, i: int) -> np.ndarray:
        """Tokens i*seq_len ... i*seq_len + seq_len, which may span parts: [seq_len + 1]."""
        start, stop = i * self.seq_len, (i + 1) * self.seq_len + 1
        part = int(np.searchsorted(self.ends, start, side="right"))
        pieces = []
        while start < stop:
            first = int(self.ends[part]) - self.parts[part].size  # stream offset of this part
            piece = self.parts[part][start - first : stop - first]
            pieces.append(piece)
            start += piece.size
            part += 1
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]


class Curriculum:
    """Phase boundaries and the mixing weights of each phase over the buckets present."""

    def __init__(self, phases: list[Phase], buckets: list[str], usable_tokens: list[int], total_steps: int):
        self.buckets = buckets
        bounds = np.cumsum([p.fraction for p in phases])
        self.phase_ends = [round(b * total_steps) for b in bounds[:-1]] + [total_steps]
        if not any(usable_tokens):
            raise ShardFormatError("no bucket holds a full training window (seq_len + 1 tokens)")
        self.weights = []  # one [n_buckets] probability vector per phase
        self.fallbacks = []  # phases none of whose buckets exist
        for i, phase in enumerate(phases):
            w = np.array([phase.weights.get(b, 0.0) if n else 0.0 for b, n in zip(buckets, usable_tokens)])
            if w.sum() == 0:
                # Better to train on what exists than to stop: mix it by size.
                w = np.array(usable_tokens, dtype=np.float64)
                self.fallbacks.append(i)
            self.weights.append(w / w.sum())

    def phase_at(self, step: int) -> int:
        return min(int(np.searchsorted(self.phase_ends, step, side="right")), len(self.phase_ends) - 1)

    def buckets_for(self, seed: int, step: int, batch_size: int) -> np.ndarray:
        """The bucket index of each of the step's samples: [batch_size], pure in (seed, step)."""
        rng = np.random.default_rng([seed, 0, step])
        return rng.choice(len(self.buckets), size=batch_size, p=self.weights[self.phase_at(step)])

    def describe(self) -> str:
        lines = []
        start = 0
        for i, (end, w) in enumerate(zip(self.phase_ends, self.weights)):
            mix = ", ".join(f"{b} {x:.2f}" for b, x in zip(self.buckets, w) if x > 0)
            note = " (no listed bucket present: mixed by size)" if i in self.fallbacks else ""
            lines.append(f"phase {i + 1}: steps {start}-{end - 1}: {mix}{note}")
            start = end
        return "\n".join(lines)


class CurriculumBatches:
    """Token batches [batch_size, seq_len + 1] for each step, read from the manifest's shards."""

    def __init__(self, shards_dir: str | Path, manifest: Manifest, *, seq_len: int, batch_size: int,
                 phases: list[Phase], total_steps: int, seed: int):
        self.batch_size = batch_size
        self.seed = seed
        self.vocab_size = manifest.vocab_size
        shards_dir = Path(shards_dir)
        self.streams = [BucketStream(_open_parts(shards_dir, manifest, b.name), seq_len) for b in manifest.buckets]
        usable = [s.windows * seq_len for s in self.streams]
        self.curriculum = Curriculum(phases, [b.name for b in manifest.buckets], usable, total_steps)
        self._orders: dict[int, tuple[int, np.ndarray]] = {}  # bucket -> (epoch, window order)

    def batches(self, start_step: int = 0) -> Iterator[np.ndarray]:
        """The batches of steps start_step, start_step + 1, ... (endless; the trainer stops)."""
        n = len(self.streams)
        drawn = np.zeros(n, dtype=np.int64)  # samples taken from each bucket before the step
        for step in range(start_step):
            drawn += np.bincount(self.curriculum.buckets_for(self.seed, step, self.batch_size), minlength=n)
        for step in itertools.count(start_step):
            rows = []
            for bucket in self.curriculum.buckets_for(self.seed, step, self.batch_size):
                rows.append(self._sample(bucket, int(drawn[bucket])))
                drawn[bucket] += 1
            batch = np.stack(rows).astype(np.int64)
            if batch.max() >= self.vocab_size:
                raise ShardFormatError(f"token id {batch.max()} in the shards is >= vocab_size {self.vocab_size}")
            yield batch

    def _sample(self, bucket: int, k: int) -> np.ndarray:
        """The k-th sample drawn from a bucket: a window of the k // windows-th shuffled epoch."""
        stream = self.streams[bucket]
        epoch, position = divmod(k, stream.windows)
        cached = self._orders.get(bucket)
        if cached is None or cached[0] != epoch:
            order = np.random.default_rng([self.seed, 1, bucket, epoch]).permutation(stream.windows)
            self._orders[bucket] = cached = (epoch, order)
        return stream.window(int(cached[1][position]))


def _open_parts(shards_dir: Path, manifest: Manifest, bucket: str) -> list[np.ndarray]:
    """The token arrays of a bucket's parts, checked against what the manifest says of them."""
    parts = []
    for f in manifest.bucket(bucket).files:
        ds = IndexedDataset(shards_dir / f.prefix)
        if ds.dtype.name != manifest.dtype or len(ds) != f.documents or ds.num_tokens != f.tokens:
            raise ShardFormatError(
                f"{shards_dir / f.idx}: holds {len(ds)} documents, {ds.num_tokens} {ds.dtype.name} tokens; "
                f"the manifest says {f.documents}, {f.tokens} {manifest.dtype}"
            )
        # curate writes documents back to back, so the .bin's first num_tokens are the stream.
        parts.append(ds.tokens[: ds.num_tokens])
    return parts


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """Runs an endless iterator in a background thread, up to `depth` items ahead, so the
    training step finds its batch ready whenever reading is faster than a step. An error in the
    thread is raised again by the `get` that would have returned its item."""

    def __init__(self, items: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(items,), name="curate-prefetch", daemon=True)
        self._thread.start()

    def _fill(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except Exception as e:  # handed to the consumer, which raises it
            self._put(_Failure(e))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self):
        item = self._queue.get()
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
