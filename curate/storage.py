"""Where curate reads and writes: local paths and object-store URIs, and the one way to write.

A location is a `pathlib.Path` (a local path, handled as it always was) or an `ObjectPath`: a
URI such as `s3://bucket/prefix`, `gs://bucket/prefix` or `hdfs://host:port/path`, served by
pyarrow's filesystems. Both answer the path calls curate reads with (`/`, name, parent, exists,
is_file, is_dir, iterdir, glob, stat, open, read_bytes, read_text), so code that reads takes
either; `location()` makes one from what the user typed.

Every file curate writes goes through this module, and is atomic:
  - local: the data goes to a temp file `.NAME.tmp-PID` beside the target, renamed into place
    once complete; a writer killed half-way leaves only a temp file (`clean_temps` removes it);
  - object store, where there is no rename: the object is uploaded whole, from a local staging
    file where the writer needs a file; a PUT (or a multipart upload, completed at the end) is
    atomic per object, so a reader sees the whole object or none.

An item of work (a stage's shard, an item of a global step) is committed by its done-file,
`<folder>/_done/<item>.json`, written last, after every file of the item is fully stored: an item
with a done-file is complete, and whatever else of it a killed run left is redone on resume
(`clean_partial`, `resumable`). That holds alike on a disk and on an object store.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Union
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import UserError

PARQUET_OPTS = dict(compression="zstd", write_statistics=False)
DONE = "_done"
TEMP_GLOB = ".*.tmp-*"
# Bytes per read from an object store: one ranged GET each (measured on the loopback S3 server:
# a 64 MB object streams in 0.22 s with 8 MB reads, in 0.96 s with 1 MB reads).
READ_BUFFER = 8 << 20
_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


# -- locations ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreOptions:
    """How to reach an object store, beyond what the environment says (run.storage in the config)."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:8333 for MinIO or SeaweedFS
    region: str | None = None
    anonymous: bool = False  # public buckets (Common Crawl): no credentials looked up or sent


_options = StoreOptions()


def configure(options: StoreOptions) -> None:
    """The store options of this process (the config's run.storage): URIs parsed afterwards use them."""
    global _options
    _options = options


def location(value: "str | Path | ObjectPath") -> "Path | ObjectPath":
    """A local path or an object-store URI, from what a user or a config wrote; `file://` URIs
    are local paths."""
    if isinstance(value, (Path, ObjectPath)):
        return value
    text = str(value)
    m = _URI.match(text)
    if m is None:
        return Path(text)
    if m.group(1).lower() == "file":
        return Path(unquote(urlparse(text).path))
    return ObjectPath.from_uri(text, _options)


def is_remote(path) -> bool:
    return isinstance(path, ObjectPath)


def relative(path, root) -> str | None:
    """`path` relative to `root` (POSIX), or None when it is not inside it."""
    if is_remote(path) != is_remote(root):
        return None
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


@dataclass(frozen=True)
class Store:
    """One filesystem of object paths: a scheme, an authority (host:port for hdfs, empty where the
    bucket leads the path) and options. The pyarrow filesystem is made once per process, so a
    path pickled to a Ray worker reconnects there with that node's credentials."""

    scheme: str
    authority: str
    options: StoreOptions

    @property
    def prefix(self) -> str:
        return f"{self.scheme}://{self.authority}"

    @property
    def fs(self):
        return _filesystem(self)


def _s3_endpoint(options: StoreOptions) -> str | None:
    # pyarrow does not read AWS_ENDPOINT_URL itself; the AWS tools do, and so does curate.
    return options.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


@functools.lru_cache(maxsize=None)
def _filesystem(store: Store, attempts: int = 8):
    import pyarrow.fs as pafs

    if store.scheme == "s3":
        o = store.options
        # Delayed open: an object is created by its upload alone, one round trip instead of two
        # (measured: 7 ms instead of 17 ms per small object on the loopback S3 server).
        return pafs.S3FileSystem(endpoint_override=o.endpoint, region=o.region, anonymous=o.anonymous,
                                 allow_delayed_open=True, connect_timeout=10 if attempts < 8 else None,
                                 retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts))
    try:
        fs, _ = pafs.FileSystem.from_uri(f"{store.prefix}/")
        return fs
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        try:  # a scheme pyarrow lacks (az://, abfs://, ...), through fsspec when it is installed
            import fsspec
            from pyarrow.fs import FSSpecHandler, PyFileSystem
        except ImportError:
            raise UserError(f"{store.prefix}: unsupported storage ({exc}); install fsspec and its "
                            f"{store.scheme} package for this scheme") from None
        return PyFileSystem(FSSpecHandler(fsspec.filesystem(store.scheme)))


@dataclass(frozen=True)
class _Stat:
    st_size: int
    st_mtime: float


class ObjectPath:
    """A file or folder on an object store, addressed by URI. Folders are key prefixes: `mkdir`
    does nothing, and a folder exists while something is stored under it. Writes go through this
    module's functions; `open` only reads."""

    __slots__ = ("store", "path", "_info", "_children")

    def __init__(self, store: Store, path: str, info=None):
        self.store, self.path, self._info = store, path.rstrip("/"), info
        self._children: list[ObjectPath] | None = None  # set by listed()

    @classmethod
    def from_uri(cls, uri: str, options: StoreOptions = StoreOptions()) -> ObjectPath:
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in ("s3", "gs", "gcs"):  # the bucket leads pyarrow's path
            path = (parsed.netloc + parsed.path).rstrip("/")
            if not parsed.netloc:
                raise UserError(f"{uri}: no bucket named")
            if scheme == "s3":  # settled here, so the path carries them to the workers
                options = replace(options, endpoint=_s3_endpoint(options),
                                  region=options.region or _s3_region(parsed.netloc, options))
            return cls(Store(scheme, "", options), path)
        return cls(Store(scheme, parsed.netloc, options), parsed.path or "/")

    # -- naming (pure) --
    def __str__(self) -> str:
        return self.store.prefix + self.path

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectPath) and (self.store, self.path) == (other.store, other.path)

    def __hash__(self) -> int:
        return hash((self.store, self.path))

    def __lt__(self, other: ObjectPath) -> bool:
        return self.path < other.path

    def __reduce__(self):
        return ObjectPath, (self.store, self.path)

    def __truediv__(self, name) -> ObjectPath:
        return ObjectPath(self.store, f"{self.path}/{str(name).strip('/')}")

    def joinpath(self, *names) -> ObjectPath:
        out = self
        for name in names:
            out = out / name
        return out

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.store, self.path.rsplit("/", 1)[0]) if "/" in self.path.strip("/") else self

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        if not isinstance(other, ObjectPath) or other.store != self.store or \
                not (self.path + "/").startswith(other.path + "/"):
            raise ValueError(f"{self} is not inside {other}")
        return PurePosixPath(self.path[len(other.path):].lstrip("/"))

    def resolve(self) -> ObjectPath:
        return self

    def expanduser(self) -> ObjectPath:
        return self

    # -- the store --
    def _get_info(self):
        return self._info if self._info is not None else self.store.fs.get_file_info(self.path)

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        return self._get_info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        import pyarrow.fs as pafs

        return self._get_info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        import pyarrow.fs as pafs

        return self._get_info().type == pafs.FileType.Directory

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> _Stat:
        info = self._get_info()
        if info.size is None:
            raise FileNotFoundError(f"{self}: no such object")
        return _Stat(info.size, info.mtime.timestamp() if info.mtime else 0.0)

    def _list(self, recursive: bool) -> list[ObjectPath]:
        import pyarrow.fs as pafs

        infos = self.store.fs.get_file_info(pafs.FileSelector(self.path, recursive=recursive))
        return [ObjectPath(self.store, i.path, i) for i in infos]

    def iterdir(self) -> Iterator[ObjectPath]:
        return iter(self._children if self._children is not None else self._list(recursive=False))

    def listed(self) -> ObjectPath:
        """This folder with its whole tree listed at once: one (paginated) listing instead of one
        per folder. Its iterdir(), and its sub-folders', answer from that listing."""
        import pyarrow.fs as pafs

        entries = self._list(recursive=True)
        by_parent: dict[str, list[ObjectPath]] = {}
        for e in entries:
            by_parent.setdefault(e.path.rsplit("/", 1)[0], []).append(e)
        root = ObjectPath(self.store, self.path, self._info)
        for e in [root, *entries]:
            if e is root or e._info.type == pafs.FileType.Directory:
                e._children = by_parent.get(e.path, [])
        return root

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """Paths matching `pattern` (`*`, `?`, `[..]` within one name; `/` between names)."""
        level = [self]
        for part in pattern.split("/"):
            nxt = []
            for folder in level:
                if not any(c in part for c in "*?["):
                    nxt.append(folder / part)
                    continue
                try:
                    nxt += [p for p in folder._list(recursive=False) if fnmatch.fnmatchcase(p.name, part)]
                except FileNotFoundError:
                    pass
            level = nxt
        return iter([p for p in level if p.exists()])

    def rglob(self, pattern: str) -> Iterator[ObjectPath]:
        try:
            found = self._list(recursive=True)
        except FileNotFoundError:
            found = []
        return iter([p for p in found if fnmatch.fnmatchcase(p.name, pattern)])

    def open(self, mode: str = "rb", encoding: str | None = None, errors: str | None = None):
        if mode not in ("r", "rb"):
            raise ValueError(f"{self}: object paths open for reading only (writes go through curate.storage)")
        f = io.BufferedReader(_ArrowRaw(self.store.fs.open_input_file(self.path)), buffer_size=READ_BUFFER)
        return f if mode == "rb" else io.TextIOWrapper(f, encoding=encoding or "utf-8", errors=errors)

    def read_bytes(self) -> bytes:
        with self.store.fs.open_input_file(self.path) as f:  # one ranged read for the whole object
            return f.read()

    def read_text(self, encoding: str = "utf-8", errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding, errors or "strict")

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is stored under it."""

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.store.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


class _ArrowRaw(io.RawIOBase):
    """A pyarrow input file as a Python raw stream (for io.BufferedReader)."""

    def __init__(self, native):
        self.native = native

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.native.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:  # the rest in one request, not in 8 KB pieces
        return self.native.read()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.native.seek(offset, whence)

    def tell(self) -> int:
        return self.native.tell()

    def close(self) -> None:
        self.native.close()
        super().close()


PathLike = Union[Path, ObjectPath]


def _s3_region(bucket: str, options: StoreOptions) -> str:
    """The region to sign requests for: the environment's, else the bucket's own (asked once)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or _s3_endpoint(options):  # a custom endpoint takes any region
        return region or "us-east-1"
    import pyarrow.fs as pafs

    try:
        return pafs.resolve_s3_region(bucket)
    except OSError as exc:
        raise UserError(f"s3://{bucket}: {explain(exc)}") from None


def worker_env() -> dict[str, str]:
    """The storage settings of this process's environment that workers on other nodes need to
    see the same store with the same identity (given to them through Ray's runtime environment)."""
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k.startswith("GOOGLE_")}


# -- errors a user can fix ------------------------------------------------------------------------
def explain(exc: BaseException) -> str:
    """One line naming what is wrong with a store (credentials, bucket, endpoint)."""
    text = str(exc)
    m = re.search(r"AWS Error (\w+)", text)
    code = m.group(1) if m else ""
    if code in ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "UNRECOGNIZED_CLIENT",
                "MISSING_AUTHENTICATION_TOKEN", "EXPIRED_TOKEN", "INVALID_CLIENT_TOK_ID") or \
            "AccessDenied" in text or "InvalidAccessKeyId" in text:
        return "access denied: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " \
               "~/.aws/credentials, AWS_PROFILE) or set run.storage.anonymous for a public bucket"
    if code == "NO_SUCH_BUCKET" or "NoSuchBucket" in text or ("Bucket" in text and "not found" in text):
        return "the bucket does not exist"
    if code == "NETWORK_CONNECTION" or "Could not connect" in text or "Could not resolve" in text:
        return f"cannot reach the storage endpoint ({_first_detail(text)})"
    return _first_detail(text)


def _first_detail(text: str) -> str:
    m = re.search(r"Details?: (.*)", text)
    line = (m.group(1) if m else text).strip().splitlines()
    return line[0] if line else "unknown error"


def check_input(path: PathLike) -> None:
    """A readable input file or folder, else one UserError line naming the problem."""
    try:
        if is_remote(path):
            _probe_listing(path)
        if not path.exists():
            raise UserError(f"input not found: {path}")
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"input {path}: {explain(exc) if is_remote(path) else exc.strerror or exc}") from None


def check_output(folder: PathLike) -> None:
    """A folder curate may write in (made if missing), else one UserError line."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        if is_remote(folder):
            _probe_listing(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(probe, b"", sync=False)
        probe.unlink()
    except OSError as exc:
        why = explain(exc) if is_remote(folder) else exc.strerror or exc
        raise UserError(f"output directory not writable: {folder} ({why})") from None


def _probe_listing(path: ObjectPath) -> None:
    """A listing under the path's bucket: it fails for bad credentials, a missing bucket and an
    unreachable endpoint, where asking for one missing key would only say 'not found'."""
    import pyarrow.fs as pafs

    # Two attempts, not the run's eight: a wrong endpoint is told in seconds (eight attempts with
    # their back-off took 48 s to say that nothing listens on the port).
    fs = _filesystem(path.store, attempts=2) if path.store.scheme == "s3" else path.store.fs
    try:
        fs.get_file_info(pafs.FileSelector(path.path, recursive=False))
    except FileNotFoundError:  # the bucket answered: only this prefix is not there (yet)
        pass


# -- reading Parquet from either kind of location ---------------------------------------------------
def _source(path: PathLike):
    return path.store.fs.open_input_file(path.path) if is_remote(path) else path


def parquet_file(path: PathLike) -> pq.ParquetFile:
    return pq.ParquetFile(_source(path))


def read_table(path: PathLike, columns: list[str] | None = None) -> pa.Table:
    if is_remote(path):
        return pq.read_table(path.path, columns=columns, filesystem=path.store.fs)
    return pq.read_table(path, columns=columns)


def read_schema(path: PathLike) -> pa.Schema:
    return pq.read_schema(_source(path))


def read_metadata(path: PathLike) -> pq.FileMetaData:
    return pq.read_metadata(_source(path))


# -- atomic writes ----------------------------------------------------------------------------------
def temp_path(path: Path) -> Path:
    """Where a local `path` is written before it is renamed into place (named by pid: two
    writers never share one)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def staging_dir() -> Path:
    """Local disk for files on their way to an object store (CURATE_STAGING, else the temp dir)."""
    path = Path(os.environ.get("CURATE_STAGING") or Path(tempfile.gettempdir()) / f"curate-staging-{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


_staged_count = itertools.count()


class Staged:
    """A local file to write `target`'s content into: `commit()` puts it in place whole (a rename,
    or an upload to the object store), `abort()` drops it. As a context manager it commits when
    the block ends and aborts on an exception.

        with Staged(path) as tmp:
            pq.write_table(table, tmp)
    """

    def __init__(self, target: PathLike):
        self.target = target
        if is_remote(target):
            self.local = staging_dir() / f"{os.getpid()}-{next(_staged_count)}-{target.name}"
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.local = temp_path(target)

    def commit(self) -> None:
        if not is_remote(self.target):
            os.replace(self.local, self.target)
            return
        try:
            with open(self.local, "rb") as src, self.target.store.fs.open_output_stream(self.target.path) as dst:
                shutil.copyfileobj(src, dst, READ_BUFFER)
        finally:
            self.local.unlink(missing_ok=True)

    def abort(self) -> None:
        self.local.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.local

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_bytes(path: PathLike, data: bytes, sync: bool = True) -> None:
    if is_remote(path):
        with path.store.fs.open_output_stream(path.path) as f:
            f.write(data)
        return
    with Staged(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        if sync:  # a done-file must not be renamed into place before its data is on disk
            f.flush()
            os.fsync(f.fileno())


def write_json(path: PathLike, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode())


def write_parquet(path: PathLike, table: pa.Table) -> None:
    with Staged(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTS)


def remove_tree(path: PathLike) -> None:
    if is_remote(path):
        try:
            path.store.fs.delete_dir(path.path)
        except FileNotFoundError:
            pass
        return
    if path.exists():
        shutil.rmtree(path)


def clean_temps(folder: PathLike, item: str | None = None) -> None:
    """Remove the temp files of killed writers: every one under `folder`, or those of one item's
    files directly in it (a failed attempt of that item). An object store holds none: its
    writers stage on local disk, and what a killed process staged there goes here too."""
    if is_remote(folder):
        _clean_staging()
        return
    found = folder.glob(f".{item}.*.tmp-*") if item else folder.rglob(TEMP_GLOB)
    for path in list(found):
        path.unlink(missing_ok=True)


def _clean_staging() -> None:
    for path in staging_dir().iterdir():
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- done-files: an item is complete when its done-file exists ------------------------------------
def done_path(folder: PathLike, item: str) -> PathLike:
    return folder / DONE / f"{item}.json"


def done_paths(folder: PathLike) -> list[PathLike]:
    """The done-files directly under `folder/_done`, in name order."""
    return sorted((folder / DONE).glob("*.json"))


def done_items(folder: PathLike) -> set[str]:
    return {p.stem for p in done_paths(folder)}


def commit(folder: PathLike, item: str, record: dict) -> None:
    """Mark `item` complete; call it only once every file of the item is stored."""
    write_json(done_path(folder, item), record)


def clean_partial(folder: PathLike, items: Iterable[str], subdirs: Iterable[str] = (".",)) -> None:
    """Remove what killed writers left under `folder`: temp files, and the files `<item>.parquet`
    (in each of `subdirs`) of items without a done-file, so a resumed run redoes them whole. On an
    object store a part without its done-file would be overwritten anyway; removing it keeps a
    listing of the folder true."""
    clean_temps(folder)
    pending = set(items) - done_items(folder)
    for sub in subdirs:
        where = folder if sub == "." else folder / sub
        for part in list(where.glob("*.parquet")):
            if part.stem in pending:
                part.unlink(missing_ok=True)


def resumable(folder: PathLike, item: str, work: Callable[[], dict]) -> dict:
    """The record of a resumable item: read back from its done-file when it is complete, else made
    by `work()` and committed. A record that lists `files` (relative to `folder`) is complete only
    while they all exist, so a deleted intermediate file is rebuilt. A record read back gets
    `skipped: True`."""
    path = done_path(folder, item)
    if path.is_file():
        record = json.loads(path.read_text())
        if all((folder / f).is_file() for f in record.get("files", ())):
            record["skipped"] = True
            return record
    record = work()
    commit(folder, item, record)
    return record


def walk(top: PathLike) -> Iterator[tuple[PathLike, list[PathLike], list[PathLike]]]:
    """(folder, sub-folders, files) for `top` and every folder under it, top-down, in name order,
    like os.walk (links to folders are not followed). Object-store entries come from one listing."""
    if not is_remote(top):
        for dirpath, dirs, files in os.walk(top):
            dirs.sort()
            base = Path(dirpath)
            sub = [base / d for d in dirs]
            yield base, sub, [base / f for f in sorted(files)]
            dirs[:] = [d.name for d in sub if d.name in dirs]  # the caller may prune `sub`
        return
    stack = [top if top._children is not None else top.listed()]
    while stack:
        folder = stack.pop()
        entries = sorted(folder._children)
        sub = [e for e in entries if e.is_dir()]
        yield folder, sub, [e for e in entries if e.is_file()]
        stack += reversed(sub)


# -- resource files: a local copy where a library needs a file path ---------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("CURATE_CACHE") or Path.home() / ".cache" / "curate") / "objects"


class LocalCopy(type(Path())):
    """A local copy of a file on an object store, for libraries that open a file path themselves
    (fastText, tokenizers). It keeps the object's URI (`source`); sent to a Ray worker on another
    machine, it fetches the object again into that machine's cache."""

    source: ObjectPath
    version: tuple

    def __reduce__(self):
        return stage_local, (self.source, self.version)


def stage_local(source: ObjectPath, version: tuple | None = None) -> LocalCopy:
    """Download `source` into the cache (once per machine and object version) and return the
    local copy. The version is the object's (size, mtime): a changed object is fetched again."""
    if version is None:
        st = source.stat()
        version = (st.st_size, st.st_mtime)
    key = hashlib.sha256(f"{source}|{version}".encode()).hexdigest()[:16]
    local = cache_dir() / key / source.name
    if not (local.is_file() and local.stat().st_size == version[0]):
        with Staged(local) as tmp, source.open("rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, READ_BUFFER)
    copy = LocalCopy(local)
    copy.source, copy.version = source, tuple(version)
    return copy
