"""The Ray engine: shards made by a pool of Ray Data actors, each loading the model once.

Shard specs go in as a Ray dataset (one row per shard); ``map_batches`` with a callable class runs
them on an actor pool (``ActorPoolStrategy``), so the model loads once per worker in the actor's
constructor, never per task or per batch. Each actor returns the shard's Parquet file as bytes and the
driver writes it atomically into the shard folder, so workers need to reach the images (the same
paths on every node) but never the index: they never open SQLite, and a cluster needs no shared
writable disk. With no address, a local Ray is started for the run (all of this machine's CPUs) and
shut down after it.

Install with ``pip install 'lookalike[ray]'``; nothing else in lookalike imports Ray.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.engines import split_finished
from lookalike.errors import InvalidOption, LookalikeError, ModelError
from lookalike.index import shards
from lookalike.index.shards import ShardSpec

CPUS_PER_WORKER = 2
"""Default share of a worker: its decoding threads and the model's threads keep about two cores busy."""

LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}
"""Ray starts its workers at nice 15 by default: on a busy machine the indexing would then yield to
everything else. A local Ray started for the run gives them normal priority (a cluster keeps its own)."""


class ShardWorker:
    """A Ray Data actor: loads the model once, then turns each shard spec it gets into Parquet bytes."""

    def __init__(self, model: str, cache_dir: str | None, batch_size: int, threads: int) -> None:
        import lookalike  # noqa: F401  (the system SQLite before TensorFlow's, as everywhere)

        if threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        from lookalike.embedder import load_embedder

        self.embedder = load_embedder(model, cache_dir)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names, blobs = [], []
        for name, files in zip(batch["name"], batch["files"], strict=True):
            spec = ShardSpec(str(name), shards.decode_files(bytes(files)))
            names.append(spec.name)
            blobs.append(shards.make_shard(spec, self.embedder, self.batch_size))
        return {"name": np.array(names, dtype=object), "parquet": np.array(blobs, dtype=object)}


class RayEngine:
    name = "ray"

    def __init__(self, model: str, cache_dir: str | Path | None = None, *, address: str | None = None,
                 workers: int | None = None, gpus_per_worker: float = 0.0, batch_size: int = 32) -> None:
        if workers is not None and workers < 1:
            raise InvalidOption("--workers", f"--workers must be at least 1, not {workers}")
        if gpus_per_worker < 0:
            raise InvalidOption("--gpus-per-worker", "--gpus-per-worker cannot be negative")
        self.model = model
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.batch_size = batch_size
        self.ran = self.skipped = self.resumed = 0

    def run(self, specs: Sequence[ShardSpec], directory: Path) -> Iterator[Path]:
        done, todo = split_finished(specs, directory)
        self.skipped, self.ran = len(done), 0
        yield from done
        if not todo:
            return
        ray = _import_ray()
        started = not ray.is_initialized()
        if started:
            self._start(ray)
        try:
            for name, data in self._stream(ray, todo):
                path = shards.save_shard(directory, name, data)
                self.ran += 1
                yield path
        finally:
            if started:
                ray.shutdown()

    def _start(self, ray: Any) -> None:
        for name in ("ray", "ray.data"):  # Ray's own progress lines, notices and the tracebacks of a failed
            logging.getLogger(name).setLevel(logging.CRITICAL)  # worker: the CLI has its own, in one line
        options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if self.address:
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise LookalikeError(f"cannot use the Ray cluster at {self.address}: {_first_line(error)}"
                                     ) from None
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     _system_config=LOCAL_SYSTEM_CONFIG, **options)

    def plan_workers(self, cluster_cpus: float) -> tuple[int, float]:
        """(workers, CPUs reserved per worker) on a cluster with ``cluster_cpus`` CPUs."""
        workers = self.workers or max(1, int(cluster_cpus) // CPUS_PER_WORKER)
        if self.gpus_per_worker:
            return workers, 1.0
        return workers, max(0.1, min(float(CPUS_PER_WORKER), cluster_cpus / workers))

    def _stream(self, ray: Any, todo: Sequence[ShardSpec]) -> Iterator[tuple[str, bytes]]:
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        cpus = float(ray.cluster_resources().get("CPU", 1))
        workers, cpus_per_worker = self.plan_workers(cpus)
        workers = min(workers, len(todo))
        items = [{"name": spec.name, "files": shards.encode_files(spec.files)} for spec in todo]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        made = dataset.map_batches(
            ShardWorker,
            fn_constructor_kwargs={"model": self.model, "cache_dir": self.cache_dir,
                                   "batch_size": self.batch_size, "threads": math.ceil(cpus_per_worker)},
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
            num_gpus=self.gpus_per_worker or None,
        )
        try:
            for batch in made.iter_batches(batch_size=None, batch_format="numpy"):
                for name, data in zip(batch["name"], batch["parquet"], strict=True):
                    yield str(name), bytes(data)
        except LookalikeError:
            raise
        except Exception as error:  # a worker's failure arrives wrapped in Ray's own exception types
            raise ModelError(f"ray engine failed: {_first_line(error)}") from None


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise LookalikeError(
            "--engine ray needs Ray: pip install 'lookalike[ray]' (or --engine local)") from None
    return ray


def _first_line(error: BaseException) -> str:
    """What a failure says, in one line: a worker's own error arrives as the last line of Ray's
    traceback text (``lookalike.errors.ModelError: cannot download ...``), its message is what counts."""
    cause = getattr(error, "cause", None)
    text = str(cause if isinstance(cause, LookalikeError) else error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    own = re.match(r"lookalike\.errors\.\w+: (.+)", lines[-1].strip())
    return own.group(1) if own else lines[-1]
