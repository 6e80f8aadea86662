"""fastText model files: checked before fastText sees them, then loaded.

fastText itself segfaults on a truncated file, allocates without bound on a corrupt header, and
loads a file cut inside its matrices without a word (zero-filled weights). `inspect` walks the
saved layout (header, dictionary, matrices; plain or product-quantized as in `.ftz`) and
requires it to end exactly at the end of the file; any mismatch is one UserError naming the
file. The language-ID stage (lid.176) and the quality classifier both load their models here.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError

MAGIC = 793712314
VERSIONS = (11, 12)
SUPERVISED = 3  # fastText's model_name::sup: a classifier, not word vectors
LABEL_PREFIX = "__label__"

_checked: dict[tuple, "ModelInfo"] = {}


@dataclass(frozen=True)
class ModelInfo:
    dim: int
    labels: tuple[str, ...]  # as stored, with their `__label__` prefix
    words: int
    quantized: bool


class _Cursor:
    """Reads fastText's little-endian binary layout, failing with `truncated` past the end."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def corrupt(self, why: str) -> UserError:
        return UserError(f"{self.path}: corrupt fastText model ({why})")

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise self.corrupt("truncated")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise self.corrupt("truncated")
        self.pos += n

    def cstring(self) -> bytes:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise self.corrupt("truncated")
        s = self.buf[self.pos:end]
        self.pos = end + 1
        return s

    def matrix(self, quantized: bool) -> int:
        """Skip a saved matrix; returns its row count."""
        if not quantized:
            m, n = self.take("<qq")
            self.skip(m * n * 4)
            return m
        qnorm, m, n, codesize = self.take("<?qqi")
        self.skip(codesize)
        self._product_quantizer()
        if qnorm:
            self.skip(m)
            self._product_quantizer()
        return m

    def _product_quantizer(self) -> None:
        dim, _nsubq, _dsub, _lastdsub = self.take("<iiii")
        self.skip(dim * 256 * 4)  # centroids: dim x 256 float32


def inspect(path: Path) -> ModelInfo:
    """Check that `path` is a complete fastText supervised model; returns its shape and labels.

    Cached per (path, size, mtime): a config validator and a worker may both ask.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"model file not found: {path}") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _checked:
        return _checked[key]
    if st.st_size == 0:
        raise UserError(f"{path}: corrupt fastText model (empty file)")
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            info = _walk(_Cursor(buf, path), len(buf))
    except OSError as e:
        raise UserError(f"{path}: cannot read model: {e.strerror or e}") from None
    _checked[key] = info
    return info


def _walk(cur: _Cursor, size: int) -> ModelInfo:
    path = cur.path
    magic, version = cur.take("<ii")
    if magic != MAGIC or version not in VERSIONS:
        raise UserError(f"{path}: not a fastText model")
    dim, _ws, _epoch, _mincount, _neg, _ngrams, _loss, model, bucket, _minn, _maxn, _lru = cur.take("<12i")
    cur.take("<d")
    if model != SUPERVISED:
        raise UserError(f"{path}: a fastText word-vector model, not a supervised classifier")
    entries, nwords, nlabels, _ntokens, pruned = cur.take("<iiiqq")
    if not (0 <= nwords <= entries and nlabels == entries - nwords and pruned >= -1):
        raise cur.corrupt("bad dictionary header")
    if nlabels == 0:
        raise UserError(f"{path}: a fastText model without labels: not a classifier")
    labels = []
    for _ in range(entries):
        word = cur.cstring()
        _count, kind = cur.take("<qb")
        if kind == 1:
            labels.append(word.decode("utf-8", "replace"))
    cur.skip(max(pruned, 0) * 8)
    (quant_input,) = cur.take("<?")
    rows = cur.matrix(quant_input)
    (quant_output,) = cur.take("<?")
    cur.matrix(quant_output)
    if cur.pos != size:
        raise cur.corrupt(f"{size - cur.pos} unexpected trailing bytes")
    if not quant_input and pruned <= 0 and rows != nwords + bucket:
        raise cur.corrupt(f"input matrix has {rows} rows")
    return ModelInfo(dim=dim, labels=tuple(labels), words=nwords, quantized=quant_input)


def load(path: Path):
    """The fastText model object of a file `inspect` accepts (a UserError for any other)."""
    import fasttext

    inspect(path)
    fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load_model warning on stderr
    try:
        return fasttext.load_model(str(path))
    except ValueError as e:
        raise UserError(f"{path}: cannot load fastText model: {e}") from None
