"""Parquet shards: the one unit of work an indexing engine maps over, and what it leaves on disk.

A shard is one list of files turned into one Parquet file: a row per file with its exact path bytes,
the stat the walk saw (size, mtime, device, inode), the content digest, width, height, format, top-5
labels, the L2-normalised vector (a fixed-size list of float32) and the traits the duplicates read
(content box, greyscale, quality, colours, thumbnail, colour grid, with their ``TRAITS_VERSION``), or
the reason it failed (``error``).
The model's fingerprint is in the file's schema metadata, so a shard can never be loaded into an
index built with another model. Nothing here opens SQLite or needs an engine: :func:`make_shard` runs
in a Ray worker as well as in a plain loop (:mod:`lookalike.engines`).

Shards are named from the sorted file listing they were cut from (:func:`plan_shards`):
``shard-00042-of-00100-<hash of the shard's files>.parquet``. The same files give the same name, so an
engine asked again for a shard that is already on disk skips it. Files are written atomically (a
temporary name in the same folder, fsync, rename): a shard on disk under its name is always complete.

pyarrow is imported only here, and only when a shard is made or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.arguments import check_path
from lookalike.embedder.traits import TRAIT_FIELDS, Traits, stored_traits, traits_from_stored
from lookalike.errors import CollectionError
from lookalike.index.walk import FoundFile, embed_failure
from lookalike.paths import NotRegular, display, from_bytes, open_regular_file, to_bytes

if TYPE_CHECKING:
    import pyarrow as pa

    from lookalike.embedder import Embedder, Fingerprint

SHARD_SIZE = 128
"""Files per shard by default: the work a killed driver loses per worker, and one engine task."""
SUFFIX = ".parquet"
PREFIX = "shard-"
FORMAT_VERSION = "2"  # 2: traits; a version 1 shard still loads, its rows' traits found later
META_FINGERPRINT = b"lookalike.fingerprint"
META_NAME = b"lookalike.shard"
META_VERSION = b"lookalike.shard_format"


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: a name and the files (as the walk found them) that go into it."""

    name: str
    files: tuple[FoundFile, ...]

    def filename(self) -> str:
        return self.name + SUFFIX


@dataclass(frozen=True)
class ShardRow:
    """One file of a shard as read back: an embedded image, or a failure (``error`` set)."""

    path: str
    size: int
    mtime: float
    device: int
    inode: int
    digest: str | None
    width: int
    height: int
    format: str
    labels: list[dict[str, Any]]
    vector: np.ndarray | None
    error: str | None
    traits: Traits | None = None  # None in a version 1 shard, or from another TRAITS_VERSION


@dataclass(frozen=True)
class Shard:
    name: str
    fingerprint: dict[str, Any]
    rows: list[ShardRow]


def plan_shards(files: Iterable[FoundFile], shard_size: int = SHARD_SIZE, salt: str = "") -> list[ShardSpec]:
    """Cut the files, sorted by their exact path bytes, into shards of ``shard_size``, each named by
    its position and a hash of its files (path bytes, size, mtime, device, inode) and ``salt`` (the
    model asked for): the same listing always gives the same names."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, not {shard_size}")
    ordered = sorted(files, key=lambda f: to_bytes(f.path))
    count = (len(ordered) + shard_size - 1) // shard_size
    specs = []
    for number in range(count):
        chunk = tuple(ordered[number * shard_size : (number + 1) * shard_size])
        digest = hashlib.sha256(salt.encode())
        for f in chunk:
            raw = to_bytes(f.path)
            digest.update(struct.pack("<Q", len(raw)) + raw)
            digest.update(struct.pack("<qdqq", f.size, f.mtime, f.device, f.inode))
        specs.append(ShardSpec(f"{PREFIX}{number:05d}-of-{count:05d}-{digest.hexdigest()[:16]}", chunk))
    return specs


def encode_files(files: Sequence[FoundFile]) -> bytes:
    """A shard's file list as bytes, for engines that ship work as data (names stay exact bytes)."""
    return json.dumps([[to_bytes(f.path).hex(), f.size, f.mtime, f.device, f.inode] for f in files]).encode()


def decode_files(data: bytes) -> tuple[FoundFile, ...]:
    return tuple(FoundFile(from_bytes(bytes.fromhex(p)), int(s), float(m), int(d), int(i))
                 for p, s, m, d, i in json.loads(data))


def schema(dim: int, fingerprint: Fingerprint | dict[str, Any], name: str) -> pa.Schema:
    import pyarrow as pa

    label = pa.struct([("name", pa.string()), ("index", pa.int32()), ("probability", pa.float64())])
    fields = [
        ("path", pa.binary()), ("size", pa.int64()), ("mtime", pa.float64()), ("device", pa.int64()),
        ("inode", pa.int64()), ("digest", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
        ("format", pa.string()), ("labels", pa.list_(label)), ("vector", pa.list_(pa.float32(), dim)),
        ("error", pa.string()),
        *zip(TRAIT_FIELDS, (pa.int32(), pa.int32(), pa.bool_(), pa.int32(), pa.binary(), pa.float64(),
                            pa.binary(), pa.binary(), pa.int32()), strict=True),
    ]
    data = fingerprint if isinstance(fingerprint, dict) else fingerprint.as_dict()
    return pa.schema(fields, metadata={META_FINGERPRINT: json.dumps(data, sort_keys=True).encode(),
                                       META_NAME: name.encode(), META_VERSION: FORMAT_VERSION.encode()})


def build_table(spec: ShardSpec, embedder: Embedder, batch_size: int = 32) -> pa.Table:
    """Embed a shard's files: a table with one row per file, in the spec's order, failures included.

    The digest is of the very bytes decoded, as the plain indexer takes it: the content the vector is of.
    """
    import pyarrow as pa

    columns: dict[str, list[Any]] = {key: [] for key in (
        "path", "size", "mtime", "device", "inode", "digest", "width", "height", "format", "labels",
        "vector", "error", *TRAIT_FIELDS)}
    files = {f.path: f for f in spec.files}
    results = embedder.embed_many(list(files), batch_size=batch_size, digests=True)
    dim = embedder.dim
    vectors = np.zeros((len(files), dim), np.float32)
    valid = np.zeros(len(files), bool)
    for row, (path, result) in enumerate(results):
        file = files[path]
        error = embed_failure(file, result)
        ok = error is None
        digest = result.digest if ok else None
        columns["path"].append(to_bytes(file.path))
        columns["size"].append(file.size)
        columns["mtime"].append(file.mtime)
        columns["device"].append(file.device)
        columns["inode"].append(file.inode)
        columns["digest"].append(digest)
        columns["width"].append(result.width if ok else None)
        columns["height"].append(result.height if ok else None)
        columns["format"].append(result.format if ok else None)
        columns["labels"].append([vars(label) for label in result.labels] if ok else None)
        columns["error"].append(error)
        traits = result.traits if ok else None
        for name, value in zip(TRAIT_FIELDS, stored_traits(traits), strict=True):
            columns[name].append(value)
        if ok:
            vectors[row] = result.vector
            valid[row] = True
    target = schema(dim, embedder.fingerprint, spec.name)
    arrays = [pa.array(columns[f.name], type=f.type) for f in target if f.name != "vector"]
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    vector = pa.FixedSizeListArray.from_arrays(flat, dim, mask=pa.array(~valid))
    arrays.insert(target.get_field_index("vector"), vector)
    return pa.Table.from_arrays(arrays, schema=target)


def to_parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def make_shard(spec: ShardSpec, embedder: Embedder, batch_size: int = 32) -> bytes:
    """The unit of work: a shard's files in, the shard's Parquet file (bytes) out. No SQLite, no engine."""
    return to_parquet_bytes(build_table(spec, embedder, batch_size))


def save_shard(directory: str | Path, name: str, data: bytes) -> Path:
    """Write a shard's bytes as ``directory/name.parquet`` atomically (temporary file, fsync, rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (name + SUFFIX)
    temporary = directory / f".{name}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)
    return target


def write_shard(spec: ShardSpec, embedder: Embedder, directory: str | Path, batch_size: int = 32) -> Path:
    """:func:`make_shard`, saved atomically into ``directory``; returns its path."""
    return save_shard(directory, spec.name, make_shard(spec, embedder, batch_size))


def finished(directory: str | Path) -> list[Path]:
    """The complete shards in ``directory`` (temporary files of a killed writer are not listed)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


def clear_partial(directory: str | Path) -> None:
    """Remove temporary files a killed writer left in ``directory``."""
    directory = Path(directory)
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.startswith(f".{PREFIX}") and p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)


def read_shard(path: str | Path) -> Shard:
    """A shard's rows and fingerprint; a file that is not a lookalike shard is a CollectionError (a path
    no file can have, InvalidOption).

    It is read through a descriptor of a regular file (:func:`~lookalike.paths.open_regular_file`): pyarrow
    given a path answers a FIFO or device with just the path as its error, and reads a folder as a
    dataset of the Parquet files in it. A Parquet file carrying our fingerprint key but not our columns,
    or a fingerprint that is no JSON object, is no shard either: one line, not a KeyError or
    JSONDecodeError from the middle of a load."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = check_path(path, "SHARD")
    try:
        with open_regular_file(path) as source:
            table = pq.read_table(source)
    except NotRegular as error:
        raise CollectionError(f"{error}, not a shard") from None
    except (OSError, pa.ArrowException) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise CollectionError(f"{display(path)}: not a readable shard ({reason})") from None
    metadata = table.schema.metadata or {}
    if META_FINGERPRINT not in metadata:
        raise CollectionError(f"{display(path)}: not a lookalike shard (no model fingerprint)")
    try:
        return _shard_of(table, metadata, path)
    except (KeyError, TypeError, ValueError, pa.ArrowException) as error:
        raise CollectionError(f"{display(path)}: not a lookalike shard ({type(error).__name__}: "
                              f"{display(str(error))})") from None


def _shard_of(table: pa.Table, metadata: dict[bytes, bytes], path: str) -> Shard:
    """The :class:`Shard` a table read from a shard file holds; KeyError, TypeError or ValueError where
    it does not hold one (a column missing, a fingerprint that is no JSON object)."""
    fingerprint = json.loads(metadata[META_FINGERPRINT])
    if not isinstance(fingerprint, dict):
        raise TypeError("its model fingerprint is no JSON object")
    name = metadata.get(META_NAME, Path(path).stem.encode()).decode()
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size
    flat = column.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vectors = flat.reshape(-1, dim)[column.offset : column.offset + len(column)]
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    data = table.drop_columns(["vector"]).to_pydict()
    has_traits = TRAIT_FIELDS[-1] in data  # a version 1 shard has none
    rows = []
    for i in range(table.num_rows):
        rows.append(ShardRow(
            from_bytes(data["path"][i]), data["size"][i], data["mtime"][i], data["device"][i],
            data["inode"][i], data["digest"][i], data["width"][i] or 0, data["height"][i] or 0,
            data["format"][i] or "", data["labels"][i] or [],
            vectors[i].copy() if valid[i] else None, data["error"][i],
            traits_from_stored(*(data[field][i] if field in data else None for field in TRAIT_FIELDS))
            if has_traits else None,
        ))
    return Shard(name, fingerprint, rows)

