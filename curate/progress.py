"""Progress of a stage: a live bar on a terminal, plain log lines otherwise.

On a terminal the bar also counts the documents done inside the shards still running (the
executor reads them from the workers' heartbeat files), so it moves within a long shard.
"""

from __future__ import annotations

import sys
import time

LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, label: str, total: int, done: int = 0, unit: str = "shards", console=None):
        self.label, self.total, self.done, self.unit = label, total, done, unit
        self.docs = 0  # documents of the shards finished here
        self.running_docs = 0  # documents done so far inside the shards still running
        self.t0 = time.perf_counter()
        self.last_log = self.t0
        self.bar = None
        if (console is not None or sys.stderr.isatty()) and total > 0:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[docs]}"), TimeElapsedColumn(), transient=True,
                                    console=console)
            self.task = self.bar.add_task(label, total=total, completed=done, docs="")
            self.bar.start()

    @property
    def live(self) -> bool:
        """A bar is shown: worth reading the running shards' document counts for."""
        return self.bar is not None

    def rate(self, docs: int) -> float:
        return docs / max(time.perf_counter() - self.t0, 1e-9)

    def advance(self, docs: int) -> None:
        self.done += 1
        self.docs += docs
        if self.bar is not None:
            self._show()
            return
        now = time.perf_counter()
        if now - self.last_log >= LOG_EVERY_S or self.done == self.total:
            self.last_log = now
            rate = f", {self.rate(self.docs):,.0f} docs/s" if self.docs else ""
            print(f"[{self.label}] {self.done}/{self.total} {self.unit}{rate}", file=sys.stderr, flush=True)

    def running(self, docs: int) -> None:
        """Documents done so far inside the shards still running."""
        self.running_docs = docs
        if self.bar is not None:
            self._show()

    def _show(self) -> None:
        docs = self.docs + self.running_docs
        text = f"{docs:,} docs, {self.rate(docs):,.0f} docs/s" if docs else ""
        self.bar.update(self.task, completed=self.done, docs=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
