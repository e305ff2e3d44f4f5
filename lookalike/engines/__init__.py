"""Engines: what maps the one unit of work (:func:`lookalike.index.shards.make_shard`) over shards.

An engine takes shard specs and a folder and makes every shard not already there, yielding each
shard's path as soon as it is on disk (those found already finished first). It never opens the index:
the driver (:meth:`lookalike.index.collection.Collection.add` with ``engine=``) loads the shards.

- ``local`` (:mod:`lookalike.engines.local`): a plain loop in this process; no extra dependencies.
- ``ray`` (:mod:`lookalike.engines.ray`): Ray Data, the model loaded once per worker actor, on a local
  Ray started for the run or on a cluster (``pip install 'lookalike[ray]'``). Imported only when asked
  for: ``import lookalike`` and the plain ``lookalike index`` never import Ray.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from lookalike.errors import InvalidOption
from lookalike.index.shards import ShardSpec

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str
    model: str  # what the workers load: a catalog name, handle or module directory
    ran: int  # shards made by the last run
    skipped: int  # shards found already finished by the last run
    resumed: int  # images loaded from shards a killed run had finished (set by the driver)

    def run(self, specs: Sequence[ShardSpec], directory: Path) -> Iterator[Path]: ...


def split_finished(specs: Sequence[ShardSpec], directory: Path) -> tuple[list[Path], list[ShardSpec]]:
    """Shards already on disk under their name (finished), and the specs still to make."""
    done, todo = [], []
    for spec in specs:
        path = directory / spec.filename()
        (done if path.exists() else todo).append(path if path.exists() else spec)
    return done, todo


def model_for(collection, model: str | None) -> str:
    """What workers load for ``collection``: the model asked for, else the index's own, else the default."""
    from lookalike.embedder.catalog import DEFAULT_MODEL

    if model:
        return model
    stored = collection.fingerprint
    return stored.handle if stored else DEFAULT_MODEL


def make_engine(name: str, *, model: str, cache_dir: str | Path | None = None, address: str | None = None,
                workers: int | None = None, gpus_per_worker: float = 0.0, batch_size: int = 32) -> Engine:
    """The engine called ``name`` ("local" or "ray"), set up to embed with ``model``."""
    if name == "local":
        if address or workers or gpus_per_worker:
            raise InvalidOption("--engine", "--address, --workers and --gpus-per-worker need --engine ray")
        from lookalike.engines.local import LocalEngine

        return LocalEngine(model, cache_dir, batch_size)
    if name == "ray":
        from lookalike.engines.ray import RayEngine

        return RayEngine(model, cache_dir, address=address, workers=workers,
                         gpus_per_worker=gpus_per_worker, batch_size=batch_size)
    raise InvalidOption("--engine", f"unknown engine {name!r}; choose {', '.join(ENGINES)}")
