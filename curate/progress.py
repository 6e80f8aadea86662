"""Progress of a stage: a live bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time

LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, label: str, total: int, done: int = 0, unit: str = "shards"):
        self.label, self.total, self.done, self.unit = label, total, done, unit
        self.docs = 0
        self.t0 = time.perf_counter()
        self.last_log = self.t0
        self.bar = None
        if sys.stderr.isatty() and total > 0:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), transient=True)
            self.task = self.bar.add_task(label, total=total, completed=done, rate="")
            self.bar.start()

    def rate(self) -> float:
        return self.docs / max(time.perf_counter() - self.t0, 1e-9)

    def advance(self, docs: int) -> None:
        self.done += 1
        self.docs += docs
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, rate=f"{self.rate():,.0f} docs/s" if self.docs else "")
            return
        now = time.perf_counter()
        if now - self.last_log >= LOG_EVERY_S or self.done == self.total:
            self.last_log = now
            rate = f", {self.rate():,.0f} docs/s" if self.docs else ""
            print(f"[{self.label}] {self.done}/{self.total} {self.unit}{rate}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
