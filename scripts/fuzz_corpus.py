"""Write a seeded corpus of malformed inputs across every format curate reads.

    python scripts/fuzz_corpus.py OUT_DIR [--n 1000] [--seed 0] [--big]

Each file is a way input goes wrong in real crawls: truncated or corrupt gzip/zstd/WARC,
invalid UTF-8 and mixed encodings, binaries with text extensions, empty files, deeply nested or
huge HTML, recursive or missing \\input, tar members escaping with ../ or absolute paths, gzip
bombs, JSONL with wrong types. `--big` adds the expensive ones (a 50 MB single line, a bomb that
inflates to 256 MB). The same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import tarfile
import zlib
from pathlib import Path

import zstandard

EXTS = [".txt", ".md", ".jsonl", ".jsonl.gz", ".jsonl.zst", ".html", ".htm", ".html.gz", ".warc", ".warc.gz",
        ".arc.gz", ".wet.gz", ".py", ".js", ".c", ".rs", ".tex", ".tar", ".tar.gz", ".parquet", ""]
WORDS = "the of and to in is was for on that with as by at from river city water light stone".split()


def prose(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def html_page(rng: random.Random) -> bytes:
    body = "".join(f"<p>{prose(rng, rng.randint(5, 60))}</p>" for _ in range(rng.randint(1, 8)))
    return f"<html><head><title>t</title></head><body>{body}</body></html>".encode()


def warc_record(rng: random.Random, payload: bytes, length_lie: int = 0) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + payload
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://fuzz.invalid/{rng.randint(0, 10**6)}\r\n"
            f"WARC-Record-ID: <urn:uuid:{rng.getrandbits(128):032x}>\r\nContent-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http) + length_lie}\r\n\r\n").encode()
    return head + http + b"\r\n\r\n"


def tar_bytes(members: dict[str, bytes], gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(1, max(1, len(data) - 1))]


def flip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def case(rng: random.Random, i: int) -> tuple[str, bytes]:
    """One malformed file: (relative name, bytes)."""
    kind = i % 20
    text = prose(rng, rng.randint(20, 200))
    if kind == 0:
        return f"trunc{i}.jsonl.gz", cut(rng, gzip.compress("\n".join(json.dumps({"text": prose(rng, 30)}) for _ in range(50)).encode()))
    if kind == 1:
        return f"corrupt{i}.jsonl.gz", flip(rng, gzip.compress(json.dumps({"text": text}).encode()))
    if kind == 2:
        return f"trunc{i}.jsonl.zst", cut(rng, zstandard.ZstdCompressor().compress(json.dumps({"text": text}).encode() * 20))
    if kind == 3:
        recs = b"".join(warc_record(rng, html_page(rng)) for _ in range(3))
        return f"trunc{i}.warc.gz", cut(rng, gzip.compress(recs))
    if kind == 4:
        return f"lying{i}.warc", warc_record(rng, html_page(rng), length_lie=rng.choice([-40, 40, 10**6]))
    if kind == 5:
        return f"badutf8-{i}.txt", text.encode() + bytes(rng.randrange(128, 256) for _ in range(40)) + text.encode()
    if kind == 6:
        return f"mixed{i}.txt", "Grüße ".encode("latin-1") + "naïve café ".encode() + "Ελληνικά".encode("utf-16")
    if kind == 7:
        ext = rng.choice([".html", ".txt", ".jsonl", ".py", ".tex", ".md"])
        return f"binary{i}{ext}", bytes(rng.getrandbits(8) for _ in range(rng.randint(10, 5000)))
    if kind == 8:
        return f"empty{i}{rng.choice(EXTS)}", b""
    if kind == 9:
        depth = rng.choice([1000, 5000, 20000])
        return f"nested{i}.html", ("<div>" * depth + text + "</div>" * depth).encode()
    if kind == 10:
        return f"huge{i}.html", ("<html><body>" + "<p>" + text + "</p>" * 1 + "<span>x</span>" * 100000 + "</body></html>").encode()
    if kind == 11:
        return f"recursive{i}.tar", tar_bytes({"main.tex": b"\\documentclass{article}\\begin{document}\\input{a}\\end{document}",
                                              "a.tex": b"A \\input{b}", "b.tex": b"B \\input{a}"}, gz=False)
    if kind == 12:
        return f"missing{i}.tex", b"\\documentclass{article}\\begin{document}\\input{nowhere}\\include{gone}" + text.encode() + b"\\end{document}"
    if kind == 13:
        return f"escape{i}.tar.gz", tar_bytes({"../../evil.tex": b"\\documentclass{article}\\begin{document}x\\end{document}",
                                              "/abs/evil.tex": b"\\documentclass{article}", "ok.tex": b"\\documentclass{article}\\begin{document}" + text.encode() + b"\\end{document}"}, gz=True)
    if kind == 14:
        return f"bomb{i}.jsonl.gz", gzip.compress(b"0" * (8 << 20), compresslevel=9)  # 8 MB -> ~8 KB: ratio > limit
    if kind == 15:
        bad = [{"text": 5}, {"text": ["a"]}, {"text": {"x": 1}}, {"text": None}, [1, 2], "str", 3.5, {"url": 7, "text": "ok text"}]
        return f"types{i}.jsonl", "\n".join(json.dumps(rng.choice(bad)) for _ in range(10)).encode()
    if kind == 16:
        return f"corrupt{i}.warc.gz", flip(rng, gzip.compress(b"".join(warc_record(rng, html_page(rng)) for _ in range(2))))
    if kind == 17:
        return f"trunc{i}.html.gz", cut(rng, gzip.compress(html_page(rng)))
    if kind == 18:
        return f"garbage{i}.parquet", b"PAR1" + bytes(rng.getrandbits(8) for _ in range(200)) + b"PAR1"
    return f"ok{i}.jsonl", json.dumps({"text": text, "url": f"http://fuzz.invalid/{i}"}).encode() + b"\n"


def write(out: Path, n: int = 1000, seed: int = 0, big: bool = False) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        name, data = case(rng, i)
        path = out / f"{i % 10}" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    if big:
        line = (prose(rng, 10) + " ") * (50 * (1 << 20) // 60)
        (out / "big").mkdir(exist_ok=True)
        (out / "big" / "one-line.txt").write_text(line[: 50 << 20])
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = b"\0" * (1 << 20)
        bomb = b"".join(z.compress(chunk) for _ in range(256)) + z.flush()  # 256 MB of zeros in ~250 KB
        (out / "big" / "bomb.txt.gz").write_bytes(bomb)
        paths += [out / "big" / "one-line.txt", out / "big" / "bomb.txt.gz"]
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    paths = write(args.out, args.n, args.seed, args.big)
    print(f"wrote {len(paths)} files under {args.out}")


if __name__ == "__main__":
    main()
