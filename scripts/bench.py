"""curate's benchmarks: per-stage speed, framework overhead, memory and scaling.

    python scripts/bench.py [--quick] [--s3] [--scale N] [--json OUT.json] [--markdown BENCHMARKS.md]

Inputs are built deterministically from ../shared/corpora (python-docs HTML wrapped into WARC
files with warcio, the Common Crawl JSONL sample, linguist code, Open Logic LaTeX). Each stage
runs alone through the CLI on one and on two workers; the figures come from the run's own
ledgers (`wall_seconds`, `process_seconds`) and from sampling the memory of every process of the
run. The overhead ratio is the pipeline's wall time on one worker (Ray start-up excluded) over
the time spent inside the stages' `process()` cores. Kernel comparisons (curate's core vs the
raw library call, and datatrove when it is installed) come from the per-stage bench modules in
scripts/. `--s3` also runs the pipeline with its input read from and its output written to a local
S3 server (SeaweedFS, scripts/s3server.py) and compares it with local disk. `--quick` finishes in
about a minute and is what the CI smoke test runs.

    python scripts/bench.py --scaling [--sizes 5000,20000,80000] [--workers 1,2] [--only dedup]

`--scaling` runs only the scaling bench: web inputs whose near-duplicate clusters grow with the
input (scripts/scaling_corpus.py), with each stage's task time per document and the run's peak
summed memory at every size and worker count.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
CURATE = [sys.executable, "-m", "curate.cli"]
STAGES = ["extract", "langid", "quality", "dedup", "bucket", "tokenize"]
WARC_FILES = 16
JSONL_FILES = 8  # per copy of the Common Crawl sample
# Shards of about 1 MB: each WARC file is a shard of its own and every stage has some twenty
# shards, enough for two workers to share evenly (64 MB shards suit real corpora, not this one).
SHARD_MB = 1


# -- inputs ----------------------------------------------------------------------------------

def copy_files(files: list[Path], base: Path, dst: Path) -> None:
    """Copy `files` (under `base`) into `dst`, keeping their relative paths."""
    for f in files:
        target = dst / f.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)


def build_inputs(dst: Path, scale: int, quick: bool) -> dict:
    """A mixed corpus: WARC-wrapped HTML, JSONL web text, code and LaTeX; `scale` copies of the
    JSONL part (each copy perturbed so copies are not exact duplicates)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    dst.mkdir(parents=True)
    html = sorted((CORPORA / "web" / "html" / "python-docs").rglob("*.html"))[: 40 if quick else None]
    (dst / "web").mkdir()
    warcs = 2 if quick else WARC_FILES
    for k in range(warcs):  # several files: extract has shards to share between workers
        with open(dst / "web" / f"python-docs-{k:02d}.warc.gz", "wb") as f:
            writer = WARCWriter(f, gzip=True)
            for page in html[k::warcs]:
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                uri = "https://docs.python.invalid/" + page.relative_to(CORPORA / "web" / "html" / "python-docs").as_posix()
                writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(page.read_bytes()),
                                                              http_headers=http))
    lines = gzip.open(CORPORA / "web" / "jsonl" / "dolma-cc-sample.jsonl.gz", "rb").read().splitlines()
    lines = [l for l in lines if l.strip()][: 150 if quick else None]
    (dst / "text").mkdir()
    per_file = -(-len(lines) // JSONL_FILES)
    for copy in range(scale):
        for start in range(0, len(lines), per_file):  # a dump comes in many files: shards
            with open(dst / "text" / f"cc-{copy:03d}-{start // per_file}.jsonl", "wb") as f:
                for i in range(start, min(start + per_file, len(lines))):
                    doc = json.loads(lines[i])
                    if copy:
                        doc["text"] = f"{doc.get('text') or ''}\n(copy {copy}, line {i})"
                    f.write(json.dumps(doc).encode() + b"\n")
    code = sorted(p for p in (CORPORA / "code" / "linguist").rglob("*") if p.is_file() and not p.name.startswith("."))
    code = code[:: 20 if quick else 4]
    copy_files(code, CORPORA / "code" / "linguist", dst / "code")
    tex = sorted((CORPORA / "academic" / "openlogic").rglob("*.tex"))[: 20 if quick else 200]
    copy_files(tex, CORPORA / "academic" / "openlogic", dst / "academic")
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    return {"html_pages": len(html), "jsonl_docs": len(lines) * scale, "code_files": len(code),
            "tex_files": len(tex), "bytes": size}


# -- running and measuring -------------------------------------------------------------------

def _run_processes(pid: int) -> list[psutil.Process]:
    """The processes of a run: its process group and every descendant of its first process
    (Ray's daemons and workers start sessions of their own, so the group alone misses them)."""
    procs: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        procs = {p.pid: p for p in [root] + root.children(recursive=True)}
    except psutil.Error:  # the run has already ended: only its group's stragglers are left
        procs = {}
    for p in psutil.process_iter():
        try:
            if p.pid not in procs and os.getpgid(p.pid) == pid:
                procs[p.pid] = p
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    return list(procs.values())


def _sample(pid: int, cpu: dict[int, float]) -> tuple[int, int]:
    """(sum, largest) RSS of a run's processes; records each one's CPU seconds (user + system)."""
    total = largest = 0
    for p in _run_processes(pid):
        try:
            rss = p.memory_info().rss
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
        cpu[p.pid] = t.user + t.system
    return total, largest


def run_cli(args: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run curate in its own process group, sampling memory and CPU time; returns wall time, peaks
    and the CPU seconds of the run's processes (as last seen alive, so a process that exits
    between two samples loses at most 0.2 s)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(CURATE + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, cwd=cwd)
    peak_sum = peak_one = 0
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        s, one = _sample(proc.pid, cpu)
        peak_sum, peak_one = max(peak_sum, s), max(peak_one, one)
        time.sleep(0.2)
    out, err = proc.communicate()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.returncode:
        raise RuntimeError(f"curate {' '.join(args)} failed: {err.decode()[-1500:]}")
    return {"wall_total": time.perf_counter() - t0, "peak_rss_sum_mb": peak_sum / 2**20,
            "peak_rss_largest_mb": peak_one / 2**20, "cpu_s": sum(cpu.values())}


def stage_figures(out, stage: str) -> dict:
    """A stage's figures from its ledger; `out` is a local path or an S3 URI."""
    from curate import registry, storage

    cls = registry.stage_class(stage)
    stats = json.loads((storage.location(out) / (cls.output_dir or stage) / "_stats.json").read_text())
    wall = stats["wall_seconds"]
    mb = stats["bytes_in"] / 2**20
    return {"docs_in": stats["docs_in"], "docs_out": stats["docs_out"], "wall_s": round(wall, 3),
            "process_s": round(stats["process_seconds"], 3), "step_s": stats.get("step_seconds", 0.0),
            "shards": stats["shards"], "docs_per_s": round(stats["docs_in"] / max(wall, 1e-9), 1),
            "mb_per_s": round(mb / max(wall, 1e-9), 2), "steps": stats.get("steps") or stats.get("counters", {}).get("steps")}


def bench_pipeline(src, work, stages: list[str], workers: int, config: Path, stage_by_stage: bool = False) -> dict:
    """Figures per stage on `workers` workers, from the run's ledgers. One `curate run` (one Ray
    start) by default; `stage_by_stage` runs each stage as its own command, so the memory
    sampled belongs to that stage alone. `src` and `work` may be S3 URIs."""
    from curate import storage

    work = storage.location(work)
    out = work / f"out-w{workers}{'-stages' if stage_by_stage else ''}"
    result = {}
    if stage_by_stage:
        for stage in stages:
            args = ["stage", stage, "--config", str(config), "--output", str(out), "--workers", str(workers),
                    "--set", f"run.shard_mb={SHARD_MB}"]
            if stage == stages[0]:
                args += ["--input", str(src)]
            mem = run_cli(args)
            result[stage] = {**stage_figures(out, stage), **{k: round(v, 1) for k, v in mem.items() if k != "wall_total"}}
    else:
        mem = run_cli(["run", "--config", str(config), "--input", str(src), "--output", str(out), "--workers", str(workers),
                       "--set", f"run.shard_mb={SHARD_MB}"])
        for stage in stages:
            result[stage] = stage_figures(out, stage)
        result["_run"] = {k: round(v, 1) for k, v in mem.items()}
    run = json.loads((out / "run.json").read_text())
    result["_ray_startup_s"] = run.get("ray_startup_seconds")
    if "dedup" in result:  # what dedup's band step hands from one step to the next: its shuffle
        bands = sum(p.stat().st_size for p in (out / "dedup" / "_work" / "bands").rglob("*.parquet"))
        result["_dedup_shuffle_bytes_per_doc"] = round(bands / max(result["dedup"]["docs_in"], 1), 1)
    return result


def best_run(src, work, stages: list[str], workers: int, config: Path, rounds: int) -> dict:
    """The fastest of `rounds` whole runs (summed stage walls): this shared machine's speed
    wanders by 10-15% from one minute to the next."""
    runs = [bench_pipeline(src, f"{work}/round-{r}", stages, workers, config) for r in range(rounds)]
    return min(runs, key=lambda run: sum(v["wall_s"] for k, v in run.items() if not k.startswith("_")))


def overhead(per_stage: dict) -> dict:
    """Wall time over time inside the stages' cores: `process()` on every shard plus the items of
    their global steps (dedup's signatures and LSH, tokenizer training, shard assembly). What is
    left is the framework: reading and writing, Arrow conversion, scheduling, worker start."""
    stages = {k: v for k, v in per_stage.items() if not k.startswith("_")}
    wall = sum(v["wall_s"] for v in stages.values())
    core = sum(v["process_s"] + v["step_s"] for v in stages.values())
    return {"pipeline_wall_s": round(wall, 3), "core_s": round(core, 3), "ratio": round(wall / max(core, 1e-9), 3),
            "by_stage": {k: round(v["wall_s"] / max(v["process_s"] + v["step_s"], 1e-9), 3) for k, v in stages.items()}}


def scaling(one: dict, two: dict) -> dict:
    """Speed-up and parallel efficiency at two workers, per stage and for the whole pipeline."""
    out = {}
    stages = [k for k in one if not k.startswith("_") and k in two]
    pairs = [(k, one[k]["wall_s"], two[k]["wall_s"]) for k in stages]
    pairs.append(("pipeline", sum(w for _, w, _ in pairs), sum(w for _, _, w in pairs)))
    for stage, a, b in pairs:
        speedup = a / max(b, 1e-9)
        out[stage] = {"speedup": round(speedup, 2), "efficiency": round(speedup / 2, 2)}
    return out


def pipeline_wall(per_stage: dict) -> float:
    return round(sum(v["wall_s"] for k, v in per_stage.items() if not k.startswith("_")), 3)


def bench_s3(src: Path, work: Path, stages: list[str], config: Path, rounds: int, local: dict) -> dict:
    """The same runs with the input read from and OUT written to a local S3 server (SeaweedFS on
    loopback), against local disk (`local`: workers -> the local best run); and the S3 clients
    measured on their own."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from s3server import S3Server

    server = S3Server(work / "s3-server")
    server.start()
    try:
        os.environ.update(server.env())  # the runs (subprocesses) and the ledger reads here
        bucket = server.bucket("bench")
        server.upload(src, f"{bucket}/input")
        out = {"clients": bench_store_clients(server)}
        for workers, ref in local.items():
            run = best_run(f"{bucket}/input", f"{bucket}/w{workers}", stages, workers, config, rounds)
            s3_wall, disk_wall = pipeline_wall(run), pipeline_wall(ref)
            out[f"workers_{workers}"] = {"s3_wall_s": s3_wall, "disk_wall_s": disk_wall,
                                         "ratio": round(s3_wall / max(disk_wall, 1e-9), 3),
                                         "by_stage": {k: [ref[k]["wall_s"], v["wall_s"]] for k, v in run.items()
                                                      if not k.startswith("_")}}
        return out
    finally:
        server.stop()


def bench_store_clients(server) -> dict:
    """Seconds for the object-store operations curate does, through pyarrow.fs (what curate uses,
    via curate.storage) and through fsspec's s3fs when it is installed: streaming a 64 MB object,
    writing it, 300 small objects written and read, listing them."""
    from curate import storage

    big = os.urandom(64 << 20)
    small = [os.urandom(20 << 10) for _ in range(300)]
    root = storage.location(server.bucket("clients"))

    def best(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return round(min(times), 3)

    def drain(f):
        while f.read(1 << 20):
            pass

    def read_big():
        with (root / "pa" / "big").open("rb") as f:
            drain(f)

    figures = {"pyarrow": {
        "write_64mb_s": best(lambda: storage.write_bytes(root / "pa" / "big", big)),
        "read_64mb_s": best(read_big),
        "write_300_small_s": best(lambda: [storage.write_bytes(root / "pa" / "s" / f"{i:04d}", b) for i, b in enumerate(small)], 1),
        "read_300_small_s": best(lambda: [(root / "pa" / "s" / f"{i:04d}").read_bytes() for i in range(len(small))]),
        "list_300_s": best(lambda: list((root / "pa" / "s").iterdir())),
    }}
    try:
        import s3fs
    except ImportError:
        figures["s3fs"] = "not installed"
        return figures
    fs = s3fs.S3FileSystem(endpoint_url=server.endpoint, key=server.KEY, secret=server.SECRET)

    def s3fs_read_big():
        with fs.open("clients/fs/big", "rb") as f:
            drain(f)

    figures["s3fs"] = {
        "write_64mb_s": best(lambda: fs.pipe_file("clients/fs/big", big)),
        "read_64mb_s": best(s3fs_read_big),
        "write_300_small_s": best(lambda: [fs.pipe_file(f"clients/fs/s/{i:04d}", b) for i, b in enumerate(small)], 1),
        "read_300_small_s": best(lambda: [fs.cat_file(f"clients/fs/s/{i:04d}") for i in range(len(small))]),
        "list_300_s": best(lambda: (fs.invalidate_cache(), fs.ls("clients/fs/s", detail=True))),
    }
    return figures


def bench_memory(work: Path, stages: list[str], config: Path, quick: bool) -> dict:
    """Peak memory of each stage at 1x and 10x the input, each stage run alone (one command, so
    the memory sampled is that stage's): it must stay flat."""
    result = {}
    for factor in (1, 10):
        src = work / f"mem-in-{factor}"
        build_inputs(src, factor * (1 if quick else 2), quick=True)
        per = bench_pipeline(src, work / f"mem-{factor}", stages, 1, config, stage_by_stage=True)
        result[f"{factor}x"] = {s: v["peak_rss_sum_mb"] for s, v in per.items() if not s.startswith("_")}
    return result


def bench_extract_docs(work: Path, config: Path, quick: bool) -> dict:
    """Issue 3's framework test: the extract stage on python-docs HTML, one worker, Ray start-up
    excluded, against plain loops over the same files: trafilatura with the settings of our full
    pass, and our own page parse (the stage's core, without the stage around it)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import extract_quality as eq

    src = work / "python-docs"
    pages = sorted((CORPORA / "web" / "html" / "python-docs").rglob("*.html"))[: 30 if quick else None]
    copy_files(pages, CORPORA / "web" / "html" / "python-docs", src)
    from curate import config as cfg

    settings = cfg.load(config).section("extract").html
    loops = {"plain_same_settings": eq.plain_same_settings(settings), "our_parse": eq.ours(settings)}
    eq.trafilatura.extract("<html><body><p>warm up</p></body></html>")
    walls = dict.fromkeys(loops, float("inf"))
    stage_wall = float("inf")
    # Interleaved rounds, best of each: the machine's speed drifts between minutes, and a loop
    # timed long after the stage would compare two different machines.
    for r in range(1 if quick else 2):
        out = work / f"out-python-docs-{r}"
        run_cli(["stage", "extract", "--config", str(config), "--input", str(src), "--output", str(out), "--workers", "1"])
        stage_wall = min(stage_wall, stage_figures(out, "extract")["wall_s"])
        for name, body in loops.items():  # reading the file is part of a plain loop too
            t0 = time.perf_counter()
            for page in pages:
                body(page.read_bytes())
            walls[name] = min(walls[name], time.perf_counter() - t0)
    n = len(pages)
    figures = {"pages": n, "stage_wall_s": stage_wall, "stage_pages_per_s": round(n / stage_wall, 2)}
    for name, wall in walls.items():
        figures[f"{name}_pages_per_s"] = round(n / wall, 2)
        figures[f"stage_vs_{name}"] = round(wall / stage_wall, 3)
    return figures


# -- kernels ---------------------------------------------------------------------------------

def _load_script(name: str):
    path = ROOT / "scripts" / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (script module, function): each returns a dict of figures comparing curate's core with the
# raw library kernel (and datatrove where it is installed) on the same documents.
KERNELS = [
    ("extract", "extract_quality", "bench"),
    ("quality", "quality_parity", "bench"),
    ("classifier", "eval_quality_classifier", "bench"),
    ("dedup", "dedup_bench", "bench"),
    ("tokenize", "tokenize_bench", "bench"),
    ("decontam", "decontam_bench", "bench"),
]


def bench_kernels(quick: bool) -> dict:
    out = {}
    for label, module_name, fn in KERNELS:
        module = _load_script(module_name)
        if module is None or not hasattr(module, fn):
            out[label] = {"skipped": f"scripts/{module_name}.py has no {fn}()"}
            continue
        try:
            out[label] = getattr(module, fn)(quick=quick)
        except Exception as exc:  # one broken kernel bench must not hide the others
            out[label] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# -- report ----------------------------------------------------------------------------------

# -- scaling: growing near-duplicate clusters ---------------------------------------------------

def bench_scaling(work: Path, sizes: list[int], workers: list[int], config: Path, only: str | None,
                  progress=None) -> dict:
    """Per size and worker count: each stage's task time per document (`process()` on every shard
    plus its global steps' items, from the ledgers), the run's CPU seconds and its peak summed
    RSS. The input comes from scripts/scaling_corpus.py; `only` runs that one stage on the
    generated documents (given as a stage output) instead of the whole pipeline."""
    import scaling_corpus

    result: dict = {}
    for n in sizes:
        docs = scaling_corpus.build(n)
        src = work / f"in-{n}"
        if only:
            scaling_corpus.write_parts(docs, src)
        else:
            scaling_corpus.write_jsonl(docs, src)
        size = {"docs": len(docs), "text_mb": round(sum(len(d["text"].encode()) for d in docs) / 2**20, 1)}
        del docs
        for w in workers:
            out = work / f"out-{n}-w{w}"
            cmd = ["stage", only] if only else ["run"]
            mem = run_cli(cmd + ["--config", str(config), "--input", str(src), "--output", str(out), "--workers", str(w)],
                          cwd=work)
            stages = [only] if only else [s for s in json.loads((out / "run.json").read_text())["stages"]]
            per = {}
            for stage in stages:
                f = stage_figures(out, stage)
                task = f["process_s"] + f["step_s"]
                per[stage] = {"docs_in": f["docs_in"], "docs_out": f["docs_out"], "wall_s": f["wall_s"],
                              "task_s": round(task, 3), "ms_per_doc": round(1000 * task / max(f["docs_in"], 1), 3)}
                if stage == "dedup":
                    d = json.loads((out / "dedup" / "_stats.json").read_text())["dedup"]
                    per[stage].update({k: d.get(k) for k in ("candidate_pairs", "pairs_checked_exactly", "pairs_verified",
                                                             "step_task_seconds", "step_cpu_seconds")})
                    if d.get("step_cpu_seconds"):  # recorded since the steps measure their CPU time
                        per[stage]["steps_cpu_ms_per_doc"] = round(1000 * sum(d["step_cpu_seconds"].values())
                                                                   / max(f["docs_in"], 1), 3)
            wall = sum(v["wall_s"] for v in per.values())
            result[f"{n}-w{w}"] = {"size": n, "workers": w, **size, "stages": per, "pipeline_wall_s": round(wall, 2),
                                   "cpu_s": round(mem["cpu_s"], 1), "peak_rss_sum_mb": round(mem["peak_rss_sum_mb"]),
                                   "peak_rss_largest_mb": round(mem["peak_rss_largest_mb"])}
            shutil.rmtree(out / "tokenize" / "shards", ignore_errors=True)  # the biggest output; figures are read
            if progress:
                progress(result)
        if 1 in workers and 2 in workers:
            a, b = result[f"{n}-w1"]["pipeline_wall_s"], result[f"{n}-w2"]["pipeline_wall_s"]
            result[f"{n}-w2"]["speedup"] = round(a / max(b, 1e-9), 2)
            result[f"{n}-w2"]["efficiency"] = round(a / max(b, 1e-9) / 2, 2)
        shutil.rmtree(src, ignore_errors=True)
    return result


def markdown_scaling(r: dict) -> str:
    rows = list(r["scaling"].values())
    stages = list(dict.fromkeys(s for row in rows for s in row["stages"]))
    head = ["docs", "workers", "text MB"] + [f"{s} ms/doc" for s in stages] + ["dedup steps CPU ms/doc",
        "dedup candidates", "checked exactly", "peak RSS sum GB", "largest GB", "CPU s", "wall s", "efficiency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        d = row["stages"].get("dedup", {})
        cells = [row["docs"], row["workers"], row["text_mb"]] + [row["stages"].get(s, {}).get("ms_per_doc", "") for s in stages]
        cells += [d.get("steps_cpu_ms_per_doc", ""), d.get("candidate_pairs", ""), d.get("pairs_checked_exactly", ""), round(row["peak_rss_sum_mb"] / 1024, 2),
                  round(row["peak_rss_largest_mb"] / 1024, 2), row["cpu_s"], row["pipeline_wall_s"], row.get("efficiency", "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def machine() -> dict:
    import pyarrow
    import ray

    from curate import __version__

    return {"date": date.today().isoformat(), "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "curate": __version__, "ray": ray.__version__, "pyarrow": pyarrow.__version__}


def markdown(r: dict) -> str:
    m, inp = r["machine"], r["inputs"]
    one, two, o, sc = r["workers_1"], r["workers_2"], r["overhead"], r["scaling"]
    run1 = one.get("_run", {})
    lines = ["# curate benchmarks", "",
             f"Generated by `python scripts/bench.py{' --quick' if r['quick'] else ''}{' --s3' if r.get('s3') else ''}` on {m['date']}: "
             f"{m['cpus']} cores, {m['memory_gb']} GB, {m['processor']}, Python {m['python']}, curate {m['curate']}, "
             f"Ray {m['ray']}, pyarrow {m['pyarrow']}. Every figure comes from the runs' own ledgers "
             "(`_stats.json`) and from sampling the memory of every process of each run.", "",
             f"Input: {inp['html_pages']} python-docs HTML pages in {WARC_FILES} WARC files, {inp['jsonl_docs']} "
             f"Common Crawl JSONL documents in {JSONL_FILES} files per copy, {inp['code_files']} code files, {inp['tex_files']} LaTeX files "
             f"({inp['bytes'] / 2**20:.1f} MB), {SHARD_MB} MB shards.", "",
             "## Stages, one worker and two", "",
             f"Wall time of each stage inside one `curate run` (the fastest of {r.get('rounds', 1)} runs; Ray "
             "start-up excluded); core = time inside `process()` plus the items of the stage's global steps.", "",
             "| stage | shards | docs in | docs/s (1w) | MB/s (1w) | core s | wall s (1w) | wall s (2w) | efficiency at 2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s, a in one.items():
        if s.startswith("_"):
            continue
        b = two.get(s, {})
        lines.append(f"| {s} | {a['shards']} | {a['docs_in']} | {a['docs_per_s']} | {a['mb_per_s']} | "
                     f"{round(a['process_s'] + a['step_s'], 2)} | {a['wall_s']} | {b.get('wall_s', '')} | "
                     f"{sc.get(s, {}).get('efficiency', '')} |")
    pipe = sc.get("pipeline", {})
    lines += ["", f"Whole pipeline: {o['pipeline_wall_s']} s on one worker, speed-up {pipe.get('speedup')} on two, "
              f"**parallel efficiency {pipe.get('efficiency')}** (target ≥ 0.9). Ray start-up, excluded above: "
              f"{one.get('_ray_startup_s')} s. Peak memory of the whole one-worker run: {run1.get('peak_rss_sum_mb')} MB "
              f"over all processes, {run1.get('peak_rss_largest_mb')} MB in the largest.", "",
              "## Framework overhead", "",
              f"Pipeline wall time on one worker over the time inside the stages' cores: {o['pipeline_wall_s']} s / "
              f"{o['core_s']} s = **{o['ratio']}** (target ≤ 1.15). By stage: "
              + ", ".join(f"{k} {v}" for k, v in o["by_stage"].items())
              + ". The rest is reading, Arrow conversion, writing, scheduling and starting the worker processes "
              "(once per run: the workers serve every stage).", ""]
    lines += markdown_s3(r.get("s3"), r.get("rounds", 1))
    ex = r.get("extract_python_docs") or {}
    if ex:
        lines += ["## Extraction on python-docs, one worker", "",
                  f"The extract stage on {ex['pages']} python-docs pages (its wall time, Ray start-up excluded): "
                  f"{ex['stage_pages_per_s']} pages/s. A plain loop over the same files with trafilatura and the "
                  f"settings of our full pass: {ex['plain_same_settings_pages_per_s']} pages/s (the stage runs at "
                  f"**{ex['stage_vs_plain_same_settings']}×** of it); a plain loop of our own page parse, the stage's "
                  f"core without the stage: {ex['our_parse_pages_per_s']} pages/s (**{ex['stage_vs_our_parse']}×**: "
                  "the framework's share).", ""]
    lines += ["## Memory at 1× and 10× the input", "",
              "Peak of the sum over all curate and Ray processes (object store included), each stage run alone "
              "on one worker (its own `curate stage` command).", "", "| stage | 1× MB | 10× MB |", "|---|---|---|"]
    mem = r.get("memory", {})
    for s in mem.get("1x", {}):
        lines.append(f"| {s} | {mem['1x'][s]} | {mem.get('10x', {}).get(s, '')} |")
    lines += ["", "## Kernels: curate's core against the raw library call (and datatrove where installed)", ""]
    for label, figures in r["kernels"].items():
        lines.append(f"- **{label}**: `{json.dumps(figures, sort_keys=True)}`")
    lines += ["", "## Projection", "", projection(r), ""]
    return "\n".join(lines)


def markdown_s3(s3: dict | None, rounds: int) -> list[str]:
    if not s3:
        return []
    one, two = s3["workers_1"], s3["workers_2"]
    lines = ["## Object storage: S3 on loopback against local disk", "",
             "The same pipeline with `--input` read from and `--output` written to a local S3 server (SeaweedFS, "
             f"`scripts/s3server.py`), the fastest of {rounds} runs per worker count; stage wall times in seconds.", "",
             "| stage | disk (1w) | S3 (1w) | disk (2w) | S3 (2w) |", "|---|---|---|---|---|"]
    for stage, (d1, s1) in one["by_stage"].items():
        d2, s2 = two["by_stage"].get(stage, ["", ""])
        lines.append(f"| {stage} | {d1} | {s1} | {d2} | {s2} |")
    lines += ["", f"Whole pipeline, S3 over local disk: {one['s3_wall_s']} s / {one['disk_wall_s']} s = "
              f"**{one['ratio']}** on one worker, {two['s3_wall_s']} s / {two['disk_wall_s']} s = **{two['ratio']}** "
              "on two (target ≤ 1.3 on loopback).", ""]
    clients = s3.get("clients") or {}
    pa_fig, fs_fig = clients.get("pyarrow") or {}, clients.get("s3fs")
    if pa_fig:
        lines += ["The S3 clients on their own (seconds, best of 3; curate uses pyarrow.fs):", "",
                  "| operation | pyarrow.fs | fsspec s3fs |", "|---|---|---|"]
        for op, value in pa_fig.items():
            other = fs_fig.get(op, "") if isinstance(fs_fig, dict) else (fs_fig or "")
            lines.append(f"| {op.removesuffix('_s').replace('_', ' ')} | {value} | {other} |")
        lines.append("")
    return lines


def projection(r: dict) -> str:
    one, sc = r["workers_1"], r["scaling"]
    shuffle = one.get("_dedup_shuffle_bytes_per_doc")
    rows = ["Each stage's one-worker throughput (framework included) times the cores, at the parallel efficiency "
            "measured at two workers (map stages share nothing but the file system). Dedup's shuffle, the band "
            f"hashes its sign step hands to its bucket step, measured {shuffle} bytes per document: "
            f"{(shuffle or 0) * 1e9 / 2**40:,.2f} TiB per billion documents to move across a cluster.", "",
            "| stage | docs/s, one core | 16-core node, docs/s | 100 nodes × 16 cores, docs/day |",
            "|---|---|---|---|"]
    for s, a in one.items():
        if s.startswith("_") or not a["wall_s"]:
            continue
        per_core = a["docs_in"] / a["wall_s"]
        eff = min(sc.get(s, {}).get("efficiency", 1.0) or 1.0, 1.0)
        rows.append(f"| {s} | {per_core:,.0f} | {per_core * 16 * eff:,.0f} | {per_core * 1600 * eff * 86400:,.0f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small input, no memory scaling and no kernel comparisons")
    ap.add_argument("--scale", type=int, default=1, help="copies of the JSONL part of the input")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (default: print)")
    ap.add_argument("--markdown", type=Path, default=None, help="write BENCHMARKS.md here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--s3", action="store_true", help="also run with input and output on a local S3 server")
    ap.add_argument("--scaling", action="store_true",
                    help="only the scaling bench: growing near-duplicate clusters (scripts/scaling_corpus.py)")
    ap.add_argument("--sizes", default="5000,20000,80000", help="--scaling: documents per input, comma-separated")
    ap.add_argument("--workers", default="1,2", help="--scaling: worker counts, comma-separated")
    ap.add_argument("--only", default=None, help="--scaling: run this one stage on the generated documents")
    args = ap.parse_args()
    if not CORPORA.exists():
        sys.exit(f"bench needs the shared corpora at {CORPORA}")
    if args.scaling:
        return main_scaling(args)

    from curate import config as cfg

    stages = cfg.load(args.config).stages
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        src = work / "input"
        result = {"quick": args.quick, "machine": machine(), "stages": stages,
                  "inputs": build_inputs(src, args.scale, args.quick)}
        rounds = result["rounds"] = 1 if args.quick else 2
        result["workers_1"] = best_run(src, work, stages, 1, args.config, rounds)
        result["workers_2"] = best_run(src, work, stages, 2, args.config, rounds)
        result["overhead"] = overhead(result["workers_1"])
        result["scaling"] = scaling(result["workers_1"], result["workers_2"])
        result["extract_python_docs"] = bench_extract_docs(work, args.config, args.quick)
        if args.s3:
            result["s3"] = bench_s3(src, work, stages, args.config, rounds,
                                    {1: result["workers_1"], 2: result["workers_2"]})
        if not args.quick:
            result["memory"] = bench_memory(work, stages, args.config, args.quick)
            result["kernels"] = bench_kernels(args.quick)
        else:
            result["memory"], result["kernels"] = {}, {}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_result(args, result, markdown)


def write_result(args, result: dict, render) -> None:
    """The result as JSON (to --json or stdout) and, with --markdown, as the table `render` makes."""
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    if args.markdown:
        args.markdown.write_text(render(result))


def main_scaling(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="curate-scaling-"))

    def progress(partial: dict) -> None:  # a long bench keeps what it measured so far
        if args.json:
            args.json.write_text(json.dumps({"machine": machine(), "scaling": partial, "partial": True}, indent=1) + "\n")

    try:
        result = {"machine": machine(), "scaling": bench_scaling(
            work, [int(x) for x in args.sizes.split(",")], [int(x) for x in args.workers.split(",")], args.config, args.only,
            progress)}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_result(args, result, markdown_scaling)


if __name__ == "__main__":
    main()
