"""A TF1 Hub module's pruned function, frozen once into a GraphDef that loads in a fraction of the time.

Why: a cold ``lookalike search`` spent most of its model time in ``hub.load`` of the TF1 SavedModel (3.2 s
for the offline Lite2 on the loaded 2-core machine) and pruning it (0.7 s). The same function as a frozen
GraphDef (weights as constants, only the ops that lead from ``images`` to features and logits) is parsed and
imported in 0.1-0.4 s (bench/coldstart.py, "Cold start" in docs/benchmarks.md).

On a machine without a GPU the frozen graph is also optimised once by grappler before it is saved (for the
CPU: constants folded, convolutions fused with their bias and activation), and run with grappler off:
otherwise grappler optimises the same graph again at every process's first call, 0.45 s of a 0.7 s first
call, for the same outputs and the same batch speed. With a GPU the graph is saved as frozen and optimised
at the first run as usual, for whichever device runs it.

It runs in a TF1 ``Session`` of its own graph rather than as a ``tf.function``: the session's own config
turns grappler off for this graph alone, and it skips the eager function's copies of a FunctionDef that
holds every weight (load + first call 0.29 s against 0.5-0.7 s for Lite2, the same outputs).

The file lives under ``<cache dir>/.lookalike-pruned/``, named by the module's path and the digest of its
files plus the TensorFlow version and this format's version, so a module whose files change (other weights
behind the same handle) or a new TensorFlow gets a fresh one and the stale file is removed. Writing is
atomic (temporary file + rename); a file that cannot be read or imported is ignored and rebuilt, and a
cache that cannot be written (read-only disk) only costs the speed-up.

TensorFlow is imported by this module: import it only where TensorFlow is already loaded (``hub``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = "2"
SUBDIR = ".lookalike-pruned"
CPU = "/job:localhost/replica:0/task:0/device:CPU:0"


def cache_file(cache_dir: Path, module_path: Path, digest: str) -> Path:
    kind = "cpu" if _cpu_only() else "any"
    name = f"{_module_key(module_path)}-{digest}-tf{tf.__version__}-v{CACHE_FORMAT_VERSION}-{kind}.pb"
    return _folder(cache_dir) / name


def load(path: Path, feeds: Sequence[str], fetches: Sequence[str]) -> Callable[[np.ndarray], list] | None:
    """The frozen function ``f(images) -> [outputs as arrays]``, or None if the file is missing or unusable.

    ``f`` may be called from several threads at once (``Session.run`` is thread-safe).
    """
    if not path.is_file():
        return None
    try:
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(path.read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
            inputs = [graph.get_tensor_by_name(name) for name in feeds]
            outputs = [graph.get_tensor_by_name(name) for name in fetches]
        config = tf.compat.v1.ConfigProto()
        config.graph_options.rewrite_options.disable_meta_optimizer = _cpu_only()  # optimised when saved
        session = tf.compat.v1.Session(graph=graph, config=config)
    except Exception as error:  # a truncated or foreign file: the slow path rebuilds it
        log.debug("ignoring pruned-function cache %s: %s", path, error)
        return None

    def run(images: np.ndarray) -> list:
        batch = np.asarray(images, dtype=np.float32)
        return session.run(outputs, dict.fromkeys(inputs, batch))

    return run


def save(path: Path, pruned, fetches: Sequence[str]) -> None:
    """Freezes ``pruned`` (a concrete function) to ``path`` atomically; removes the module's stale files.

    ``fetches`` are the outputs :func:`load` will ask for by name: the optimiser keeps them.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    try:
        frozen = convert_variables_to_constants_v2(pruned)
        graph_def = _optimised_for_cpu(frozen, fetches) if _cpu_only() else frozen.graph.as_graph_def()
        data = graph_def.SerializeToString()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)  # like the module files beside it, not mkstemp's 0600
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(scratch, path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise
    except Exception as error:  # read-only cache, full disk, an op the freezer refuses: stay on the slow path
        log.debug("cannot cache the pruned function at %s: %s", path, error)
        return
    prefix = path.name.split("-", 1)[0] + "-"
    for stale in path.parent.glob(f"{prefix}*.pb"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _cpu_only() -> bool:
    return not tf.config.list_physical_devices("GPU")


def _optimised_for_cpu(frozen, fetches: Sequence[str]):
    """The frozen function's graph as grappler leaves it for the CPU, ``fetches`` kept by name."""
    from tensorflow.python.grappler import tf_optimizer

    graph_def = frozen.graph.as_graph_def()
    for node in graph_def.node:
        node.device = CPU  # the remapper fuses ops only for a known device
    meta_graph = tf.compat.v1.train.export_meta_graph(graph_def=graph_def, graph=frozen.graph)
    meta_graph.collection_def["train_op"].node_list.value.extend(fetches)
    return tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta_graph)


def _folder(cache_dir: Path) -> Path:
    return Path(cache_dir) / SUBDIR


def _module_key(module_path: Path) -> str:
    return hashlib.sha1(str(Path(module_path).resolve()).encode()).hexdigest()[:16]
