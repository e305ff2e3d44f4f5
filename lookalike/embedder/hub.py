"""Finding and running TF-Hub image modules, in both formats, the way ``tensorflow_hub`` resolves them.

A module is named by a TF-Hub handle (https URL, cached at ``$TFHUB_CACHE_DIR/<sha1 of handle>``), a URL of a
tar.gz, or a local module directory. Legacy TF1 Hub modules (``tfhub_module.pb`` + a SavedModel with an empty
tag set) are run through one pruned function that fetches the feature vector and the logits together, so
labels cost no second forward pass. TF2 SavedModels are run through their signatures or ``__call__``.

TensorFlow is imported by this module only, and this module only when a model is loaded. ``tensorflow_hub``
(0.4 s more) is imported only when a module must be downloaded or loaded through ``hub.load``: a TF1
module whose frozen pruned function is cached (the usual cold start) never needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.embedder import catalog
from lookalike.errors import ModelError


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool) -> Iterator[None]:
    """TensorFlow's C++ start-up lines (oneDNN, CUDA probing) bypass every log setting: hide them."""
    if not enabled:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_USER_SET_TF_LOGGING = "TF_CPP_MIN_LOG_LEVEL" in os.environ
if not _USER_SET_TF_LOGGING:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # read once at import; removed after so children decide anew
with _native_stderr_silenced(not _USER_SET_TF_LOGGING):
    import tensorflow as tf

    tf.config.list_physical_devices()  # device probing logs its CUDA failure here, inside the silence
    if not _USER_SET_TF_LOGGING:
        tf.get_logger().setLevel(logging.ERROR)  # TF1-API deprecation notices mean nothing to our users
        del os.environ["TF_CPP_MIN_LOG_LEVEL"]

from lookalike.embedder import pruned_cache  # noqa: E402 - after TensorFlow's silenced import

log = logging.getLogger(__name__)

FEATURE_SIGNATURE = "image_feature_vector"
CLASSIFICATION_SIGNATURE = "image_classification"
TF1_MODULE_MARKER = "tfhub_module.pb"
# The attachment a TF1 image module uses to declare its expected input size (hub.attach_image_module_info).
ATTACHMENT_COLLECTION = "hub_module_attachments"
IMAGE_MODULE_INFO_KEY = "image_module_info"
# "0" turns off the frozen copy of a TF1 module's pruned function (pruned_cache), e.g. to measure without it;
# it is kept only for modules inside the cache dir (see _in_cache).
PRUNED_CACHE_ENV = "LOOKALIKE_PRUNED_CACHE"
FALLBACK_INPUT_SIZE = 260

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class LoadedModule:
    """A module ready to run: ``run(pixels)`` gives (features, logits or None) in one call."""

    handle: str
    path: Path
    format: str  # "tf1-hub" or "saved-model"
    run: Runner
    declared_input_size: int | None
    digest: str  # module_digest(path), computed once: it names the frozen function and fingerprints vectors


def default_cache_dir() -> Path:
    """``TFHUB_CACHE_DIR`` when set (as tensorflow_hub does), else a per-user cache that persists."""
    explicit = os.environ.get("TFHUB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lookalike" / "tfhub_modules"


def cached_module_dir(handle: str, cache_dir: Path) -> Path:
    """Where tensorflow_hub keeps (or looks for) the unpacked module of a URL handle."""
    return cache_dir / hashlib.sha1(handle.encode("utf8")).hexdigest()


def resolve(handle: str, cache_dir: Path) -> Path:
    """The local directory of a module, downloading it only if it is not already there."""
    entry = catalog.lookup(handle)
    if entry is not None and entry.offline:
        from lookalike.embedder.lite2 import ensure_module

        return ensure_module(cache_dir)
    if not handle.startswith(("http://", "https://", "gs://")):
        path = Path(handle).expanduser()
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
            raise ModelError(
                f"{handle} is an archive: tensorflow_hub fetches those only over http(s); unpack it "
                f"(mkdir DIR && tar -xf {handle} -C DIR) and pass --model DIR"
            )
        if not path.is_dir():
            raise ModelError(f"model {handle!r} is not a catalog name, a URL or a module directory")
        return path.resolve()
    cached = cached_module_dir(handle, cache_dir)
    if cached.is_dir() and any(cached.iterdir()):
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("TFHUB_CACHE_DIR")
    os.environ["TFHUB_CACHE_DIR"] = str(cache_dir)
    try:
        import tensorflow_hub

        return Path(tensorflow_hub.resolve(handle))
    except (urllib.error.URLError, OSError, tf.errors.OpError) as error:
        reason = getattr(error, "reason", None) or error
        raise ModelError(
            f"cannot download {handle} ({reason}); offline, use --model {catalog.OFFLINE_MODEL}, or unpack "
            f"the module into {cached}"
        ) from None
    finally:
        if previous is None:
            os.environ.pop("TFHUB_CACHE_DIR", None)
        else:
            os.environ["TFHUB_CACHE_DIR"] = previous


def load(handle: str, cache_dir: Path) -> LoadedModule:
    path = resolve(handle, cache_dir)
    tf1 = (path / TF1_MODULE_MARKER).exists()
    digest = module_digest(path)
    frozen_at = None
    if tf1 and _in_cache(path, cache_dir) and os.environ.get(PRUNED_CACHE_ENV, "1") != "0":
        frozen_at = pruned_cache.cache_file(cache_dir, path, digest)
        cached = _tf1_frozen_runner(path, frozen_at)
        if cached is not None:
            return LoadedModule(handle, path, "tf1-hub", *cached, digest)
    import tensorflow_hub

    try:
        loaded = tensorflow_hub.load(str(path))
    except Exception as error:  # TensorFlow raises many types for a bad SavedModel
        raise ModelError(f"cannot load module {handle} from {path}: {first_line(error)}") from None
    if tf1:
        run, size = _tf1_runner(loaded, path, frozen_at)
        return LoadedModule(handle, path, "tf1-hub", run, size, digest)
    run, size = _tf2_runner(loaded, handle)
    return LoadedModule(handle, path, "saved-model", run, size, digest)


def _in_cache(path: Path, cache_dir: Path) -> bool:
    """Modules the cache holds (downloaded handles, the converted Lite2) get a frozen pruned function.

    A module directory of the user's own is run as it is: no file is written about arbitrary folders,
    which may be temporary (every test's tiny module) and would leave orphan files in the cache.
    """
    try:
        return path.resolve().is_relative_to(Path(cache_dir).resolve())
    except OSError:
        return False


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def module_digest(path: Path) -> str:
    """A digest of every file of the module, so an index notices when the same handle means other weights."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _tf1_meta_graph(path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((path / "saved_model.pb").read_bytes())
    for meta_graph in model.meta_graphs:
        if not meta_graph.meta_info_def.tags:
            return meta_graph
    raise ModelError(f"TF1 Hub module {path} has no graph with the empty tag set")


def _tf1_plan(path: Path) -> tuple[list[str], list[str], int | None]:
    """Feeds (the shared ``images`` input), fetches (features, then logits if any) and declared input size."""
    meta_graph = _tf1_meta_graph(path)
    signatures = meta_graph.signature_def
    feature_name = FEATURE_SIGNATURE if FEATURE_SIGNATURE in signatures else "default"
    if feature_name not in signatures:
        raise ModelError(f"module {path} has no {FEATURE_SIGNATURE} signature")
    features_sig = signatures[feature_name]
    image_input = features_sig.inputs["images"]
    fetches = [features_sig.outputs["default"].name]
    feeds = [image_input.name]
    classifier = signatures.get(CLASSIFICATION_SIGNATURE)
    if classifier is not None:
        fetches.append(classifier.outputs["default"].name)
        if classifier.inputs["images"].name != image_input.name:
            # Separate input placeholders: feed the same batch to both (correct, but two passes).
            feeds.append(classifier.inputs["images"].name)
    size = _static_size(image_input.tensor_shape.dim[1:3]) or _attached_image_size(meta_graph)
    return feeds, fetches, size


def _tf1_runner(loaded, path: Path, frozen_at: Path | None = None) -> tuple[Runner, int | None]:
    """One pruned function from the shared ``images`` input to both signatures' outputs.

    With ``frozen_at``, the pruned function is also frozen there for the next process (pruned_cache).
    """
    feeds, fetches, size = _tf1_plan(path)
    pruned = loaded.prune(feeds=feeds, fetches=fetches)
    if frozen_at is not None:
        pruned_cache.save(frozen_at, pruned, fetches)
    return _runner(lambda batch: pruned(*([batch] * len(feeds)))), size


def _tf1_frozen_runner(path: Path, frozen_at: Path) -> tuple[Runner, int | None] | None:
    """The same function from its frozen GraphDef, without ``hub.load``; None when there is none yet."""
    feeds, fetches, size = _tf1_plan(path)
    frozen = pruned_cache.load(frozen_at, feeds, fetches)
    if frozen is None:
        return None
    return _runner(frozen), size


def _runner(function) -> Runner:
    def run(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = function(tf.constant(pixels, dtype=tf.float32))  # tensors, or arrays from the frozen one
        features = np.asarray(outputs[0])
        logits = np.asarray(outputs[1]) if len(outputs) > 1 else None
        return _flatten(features), logits

    return run


def _tf2_runner(loaded, handle: str) -> tuple[Runner, int | None]:
    """TF2 SavedModels: named signatures when present (two passes if both), else the object's ``__call__``."""
    signatures = getattr(loaded, "signatures", {}) or {}
    if FEATURE_SIGNATURE in signatures:
        features_fn = signatures[FEATURE_SIGNATURE]
        classify_fn = signatures.get(CLASSIFICATION_SIGNATURE)
        spec = features_fn.structured_input_signature[1].get("images")
        if spec is None:
            raise ModelError(f"module {handle}: signature {FEATURE_SIGNATURE} takes no 'images' input")

        def run(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            batch = tf.constant(pixels, dtype=tf.float32)
            features = _single_output(features_fn(images=batch))
            logits = _single_output(classify_fn(images=batch)) if classify_fn is not None else None
            return _flatten(features), logits

        return run, _static_size(spec.shape[1:3])
    if callable(loaded):

        def run_call(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return _flatten(_single_output(loaded(tf.constant(pixels, dtype=tf.float32)))), None

        return run_call, None
    raise ModelError(f"module {handle} has neither an {FEATURE_SIGNATURE} signature nor a __call__")


def _single_output(result) -> np.ndarray:
    if isinstance(result, dict):
        result = result["default"] if "default" in result else next(iter(result.values()))
    return np.asarray(result)


def _flatten(features: np.ndarray) -> np.ndarray:
    return features.reshape(features.shape[0], -1).astype(np.float32, copy=False)


def _static_size(dims) -> int | None:
    values = [d if isinstance(d, int | None) else (d.size if d.size >= 0 else None) for d in dims]
    if len(values) == 2 and values[0] and values[0] == values[1]:
        return int(values[0])
    return None


def _attached_image_size(meta_graph) -> int | None:
    """Reads ``image_module_info`` (hub.attach_image_module_info) without the TF1 hub protos, gone in 0.16."""
    collection = meta_graph.collection_def.get(ATTACHMENT_COLLECTION)
    if collection is None:
        return None
    for serialized in collection.bytes_list.value:
        fields = _protobuf_fields(serialized)
        if fields.get(1) == IMAGE_MODULE_INFO_KEY.encode():
            info = _protobuf_fields(fields.get(2, b""))
            size = _protobuf_fields(info.get(1, b""))
            height, width = size.get(1), size.get(2)
            if height and height == width:
                return int(height)
    return None


def _protobuf_fields(data: bytes) -> dict[int, int | bytes]:
    """Decodes the varint and length-delimited fields of a small protobuf message (last value wins)."""
    fields: dict[int, int | bytes] = {}
    position = 0

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while position < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields[number] = varint()
        elif wire_type == 2:
            length = varint()
            fields[number] = data[position : position + length]
            position += length
        else:
            raise ModelError(f"unexpected protobuf wire type {wire_type} in a module attachment")
    return fields


def input_size(handle: str, module: LoadedModule) -> int:
    """The catalog's size, else the module's own declaration, else 260 (B2's) with a warning."""
    entry = catalog.lookup(handle)
    if entry is not None:
        return entry.input_size
    if module.declared_input_size:
        return module.declared_input_size
    log.warning("module %s declares no input size; using %d", handle, FALLBACK_INPUT_SIZE)
    return FALLBACK_INPUT_SIZE
