"""The local engine: shards made one after the other in this process, with the model loaded once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.engines import split_finished
from lookalike.index import shards
from lookalike.index.shards import ShardSpec

if TYPE_CHECKING:
    from lookalike.embedder import Embedder


class LocalEngine:
    name = "local"

    def __init__(self, model: str, cache_dir: str | Path | None = None, batch_size: int = 32,
                 embedder: Embedder | None = None) -> None:
        self.model = model
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.embedder = embedder  # loaded at the first shard to make (none to make: no model)
        self.ran = self.skipped = self.resumed = 0

    def run(self, specs: Sequence[ShardSpec], directory: Path) -> Iterator[Path]:
        done, todo = split_finished(specs, directory)
        self.skipped, self.ran = len(done), 0
        yield from done
        for spec in todo:
            if self.embedder is None:
                from lookalike.embedder import load_embedder

                self.embedder = load_embedder(self.model, self.cache_dir)
            path = shards.write_shard(spec, self.embedder, directory, self.batch_size)
            self.ran += 1
            yield path
