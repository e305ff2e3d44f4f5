"""Embedding throughput of the offline model: model alone vs end to end, and what labels cost.

Run by hand: ``python bench/embed.py``. Side by side in one run (the machine is shared and noisy):
- model-only images/s: ``Embedder.embed_pixels`` on already preprocessed batches;
- end-to-end images/s: ``Embedder.embed_many`` on JPEG files (decode + preprocess in threads, inference in
  batches), on small photos and on 12-megapixel photos;
- labels overhead: one pruned call fetching features only vs features + logits (what the embedder runs).
Medians of interleaved repeats; writes the "## Embedding throughput" section of docs/benchmarks.md.

``python bench/embed.py --b2`` measures the default model instead, whose weights cannot be downloaded here:
a module with EfficientNet-B2's architecture and random weights (speed does not depend on the weights) in
the TF1 Hub format of tfhub.dev's, loaded through ``load_embedder`` like any module; side by side in one
run with Lite2 and Keras' own ``EfficientNetB2(weights=None)`` model-only at the same batch size (what a
script of one's own would get). Writes the "## Default model (B2-shape) throughput" section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, today, write_section  # noqa: E402
from samples import jittered_jpegs  # noqa: E402

import lookalike  # noqa: E402
from lookalike.embedder import load_embedder  # noqa: E402
from lookalike.embedder.images import load_image  # noqa: E402

SECTION = "## Embedding throughput"
B2_SECTION = "## Default model (B2-shape) throughput"
B2_MODULE_NAME = "lookalike-bench-efficientnet-b2-shape-random"  # inside the model cache, like a download


B2_SIZE = 260


def build_b2_shape_module(target: Path) -> Path:
    """EfficientNet-B2's exact architecture, random weights, as a TF1 Hub module like tfhub.dev's B2.

    Same conventions as the real module (and lite2/export.py): variables, not constants; one ``images``
    placeholder (float32 in [0, 1], 260x260 declared) feeding ``image_feature_vector`` (1408-d, the global
    average pool) and ``image_classification``/``default`` (1001 logits). The graph is tf_keras'
    ``EfficientNetB2(weights=None)`` built in a TF1 graph, fed ``images * 255`` (its own input scaling).
    """
    from lookalike.embedder.lite2.export import is_complete, module_def_bytes

    if is_complete(target):
        return target
    import tensorflow as tf
    import tf_keras

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.float32, [None, B2_SIZE, B2_SIZE, 3], name="images")
        tf_keras.backend.set_learning_phase(0)
        model = tf_keras.applications.EfficientNetB2(
            weights=None, classes=1001, classifier_activation=None, input_tensor=images * 255.0
        )
        features = tf.identity(model.get_layer("avg_pool").output, name="feature_vector")
        logits = tf.identity(model.output, name="classification_logits")
        info = v1.saved_model.utils.build_tensor_info
        sig = v1.saved_model.signature_def_utils.build_signature_def
        method = v1.saved_model.signature_constants.PREDICT_METHOD_NAME
        classify = sig({"images": info(images)}, {"default": info(logits)}, method)
        signatures = {"default": classify, "image_classification": classify}
        features_sig = sig({"images": info(images)}, {"default": info(features)}, method)
        signatures["image_feature_vector"] = features_sig
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(
                session, [], signature_def_map=signatures, strip_default_attrs=True
            )
            builder.save()
    (target / "tfhub_module.pb").write_bytes(module_def_bytes())
    return target


def per_second(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--small", type=int, default=128, help="number of 640x480 JPEGs")
    parser.add_argument("--large", type=int, default=64, help="number of 4000x3000 (12 MP) JPEGs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label-repeats", type=int, default=15, help="pairs of features-only/both calls")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--b2", action="store_true", help="B2-shape vs Lite2 vs Keras B2 (own section)")
    args = parser.parse_args()
    if args.b2:
        return b2_main(args)

    embedder = load_embedder(args.model)
    size = embedder.input_size
    with tempfile.TemporaryDirectory() as tmp:
        small = jittered_jpegs(Path(tmp) / "small", args.small, (640, 480))
        large = jittered_jpegs(Path(tmp) / "large", args.large, (4000, 3000))
        pixels = np.random.default_rng(1).random((args.batch, size, size, 3), dtype=np.float32)
        features_only, both = _pruned_pair(embedder)
        list(embedder.embed_many(small[: args.batch], batch_size=args.batch))  # warm-up
        times: dict[str, list[float]] = {
            k: [] for k in ("model", "small", "large", "index", "features", "both")
        }
        for repeat in range(args.repeats):  # interleaved, so drift hits every measurement alike
            times["model"].append(_timed(lambda: embedder.embed_pixels(pixels)))
            times["small"].append(_timed(lambda: list(embedder.embed_many(small, batch_size=args.batch))))
            times["large"].append(_timed(lambda: list(embedder.embed_many(large, batch_size=args.batch))))
            collection = lookalike.open(Path(tmp) / f"index{repeat}", model=args.model)
            collection.embedder  # noqa: B018 - load the model before the clock starts
            times["index"].append(_timed(lambda c=collection: c.add([Path(tmp) / "small"])))
        for _ in range(args.label_repeats):
            times["features"].append(_timed(lambda: features_only(pixels)))
            times["both"].append(_timed(lambda: both(pixels)))

        decode = {name: statistics.median(_timed(lambda p=p: load_image(p, size)) for p in paths)
                  for name, paths in (("small", small), ("large", large))}
    model_ips = per_second(args.batch, times["model"])
    small_ips = per_second(args.small, times["small"])
    large_ips = per_second(args.large, times["large"])
    index_ips = per_second(args.small, times["index"])
    # The model keeps every core busy, so decoding can only hide in CPU time it does not use: with
    # `cores / model_ips` core-seconds per image of model work, this is the best end-to-end ratio.
    cores = os.cpu_count() or 1
    ceiling = {name: (cores / model_ips) / (cores / model_ips + seconds) for name, seconds in decode.items()}
    overhead = statistics.median(times["both"]) / statistics.median(times["features"]) - 1
    rows = [
        ("model only (preprocessed batch)", model_ips, 1.0, "", ""),
        ("end to end, 640x480 JPEGs", small_ips, small_ips / model_ips,
         f"{decode['small'] * 1000:.1f}", f"{ceiling['small']:.2f}"),
        ("end to end, 4000x3000 (12 MP) JPEGs", large_ips, large_ips / model_ips,
         f"{decode['large'] * 1000:.1f}", f"{ceiling['large']:.2f}"),
        ("`Collection.add` of the 640x480 folder (+ digest, SQLite, FAISS)", index_ips, index_ips / model_ips,
         "", ""),
    ]
    table = ["| what | images/s | ratio to model only | decode + preprocess ms (1 thread) "
             "| CPU-bound ceiling of the ratio |", "|---|---:|---:|---:|---:|"]
    table += [f"| {name} | {ips:.1f} | {ratio:.2f} | {ms} | {top} |" for name, ips, ratio, ms, top in rows]
    body = "\n".join(table) + (
        "\n\nThe model alone keeps every core busy, so decoding overlaps with inference only as far as CPU "
        "time allows: the ceiling column is model core-time / (model core-time + decode time) per image, "
        "and the measured ratio comes close to it: the pipeline hides what the CPU leaves room for. "
        "Indexing (`Collection.add`: also the SHA-256 digest, SQLite commits and FAISS) runs at the speed "
        "of embedding."
        f"\n\nLabels cost: features + logits in one pruned call vs features only: "
        f"{overhead:+.1%} (medians of {args.label_repeats} interleaved pairs, batch {args.batch}).\n\n"
        f"`python bench/embed.py` on {today()}, {machine()}; model {embedder.name} "
        f"({embedder.dim}-d, {size}x{size}), batch {args.batch}, medians of {args.repeats} interleaved "
        f"repeats over {args.small} small and {args.large} large JPEGs."
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


def b2_main(args) -> None:
    import keras

    from lookalike.embedder import hub

    module = str(build_b2_shape_module(hub.default_cache_dir() / B2_MODULE_NAME))
    os.environ[hub.PRUNED_CACHE_ENV] = "0"
    b2_pruned = load_embedder(module)  # hub.load + prune, as every load did before the frozen cache
    del os.environ[hub.PRUNED_CACHE_ENV]
    load_embedder(module)  # writes the frozen pruned function if it is not there yet
    b2 = load_embedder(module)  # what every later process runs: the frozen function
    assert b2._run is not b2_pruned._run
    lite2 = load_embedder("efficientnet-lite2")
    keras_b2 = keras.applications.EfficientNetB2(weights=None)
    batch = args.batch
    pixels = np.random.default_rng(1).random((batch, B2_SIZE, B2_SIZE, 3), dtype=np.float32)
    keras_pixels = pixels * 255.0  # Keras' EfficientNet scales its own input from 0-255
    with tempfile.TemporaryDirectory() as tmp:
        small = jittered_jpegs(Path(tmp) / "small", args.small, (640, 480))
        work = {
            "b2 e2e": lambda: list(b2.embed_many(small, batch_size=batch)),
            "b2 model": lambda: b2.embed_pixels(pixels),
            "b2 pruned model": lambda: b2_pruned.embed_pixels(pixels),
            "lite2 e2e": lambda: list(lite2.embed_many(small, batch_size=batch)),
            "lite2 model": lambda: lite2.embed_pixels(pixels),
            "keras model": lambda: keras_b2.predict_on_batch(keras_pixels),
        }
        for run in work.values():  # warm-up: first calls build and optimise the graphs
            run()
        times: dict[str, list[float]] = {name: [] for name in work}
        for _ in range(args.repeats):  # interleaved, so drift hits every measurement alike
            for name, run in work.items():
                times[name].append(_timed(run))
    count = {name: (args.small if name.endswith("e2e") else batch) for name in work}
    ips = {name: per_second(count[name], times[name]) for name in work}
    keras_ips = ips["keras model"]
    rows = [  # lookalike's rows run the frozen pruned function (pruned_cache), as every load after the first
        ("lookalike B2-shape, end to end, 640x480 JPEGs (`embed_many`)", ips["b2 e2e"]),
        ("lookalike B2-shape, model only (`embed_pixels`, features + logits)", ips["b2 model"]),
        ("the same, `hub.load` + prune instead of the frozen function", ips["b2 pruned model"]),
        ("Keras `EfficientNetB2(weights=None)`, model only (`predict_on_batch`)", keras_ips),
        ("lookalike Lite2, end to end, 640x480 JPEGs", ips["lite2 e2e"]),
        ("lookalike Lite2, model only", ips["lite2 model"]),
    ]
    table = ["| what | images/s | ratio to Keras B2 model only |", "|---|---:|---:|"]
    table += [f"| {name} | {value:.1f} | {value / keras_ips:.2f} |" for name, value in rows]
    body = "\n".join(table) + (
        f"\n\nB2 end to end runs at {ips['b2 e2e'] / ips['lite2 e2e']:.2f}x Lite2's speed end to end and at "
        f"{ips['b2 e2e'] / keras_ips:.2f}x Keras B2 model-only (the issue's goal: within 10 %). The B2-shape "
        "module is tf_keras' EfficientNetB2 graph (its own input scaling and normalisation, where tfhub.dev's"
        " "
        "module normalises with constants: the same few element-wise ops per pixel), so its speed is B2's "
        "whatever the weights. lookalike's rows run the frozen pruned function every load after the first "
        "uses (lookalike/embedder/pruned_cache.py); the `hub.load` + prune row is the path before it. "
        "Tried ad hoc on B2-shape model only, batch 32, a fresh process per setting, two rounds: intra/i"
        "nter-op threads 2/1 and 1/2 gave 17.3-18.7 images/s against 17.9 for TensorFlow's defaults (no "
        "difference); oneDNN off (`TF_ENABLE_ONEDNN_OPTS=0`) 6.2-7.3 (2.5x slower); XLA (`jit_compile=Tr"
        "ue` around the frozen function) 1.5 images/s after a 28-38 s first call. Kept: the defaults. No"
        "t tried: other batch sizes (see Peak memory by batch size: none faster than 32-64 with Lite2)."
        "\n\n"
        f"`python bench/embed.py --b2` on {today()}, {machine()}; batch {batch}, medians of {args.repeats} "
        f"interleaved repeats over {args.small} JPEGs of 640x480 (the B2-shape module: "
        f"{b2.dim}-d, {b2.input_size}x{b2.input_size}, random weights, built by `build_b2_shape_module`)."
    )
    print(body)
    if not args.no_write:
        write_section(B2_SECTION, body)


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _pruned_pair(embedder):
    """The module's feature-only pruned function and the features+logits one the embedder uses."""
    import tensorflow as tf
    import tensorflow_hub as hub

    from lookalike.embedder.hub import _tf1_meta_graph

    if embedder.format != "tf1-hub":
        raise SystemExit("labels overhead is measured on TF1 Hub modules only")
    path = embedder.module_path
    loaded = hub.load(str(path))
    signatures = _tf1_meta_graph(path).signature_def
    image = signatures["image_feature_vector"].inputs["images"].name
    features = signatures["image_feature_vector"].outputs["default"].name
    logits = signatures["image_classification"].outputs["default"].name
    only = loaded.prune(feeds=[image], fetches=[features])
    pair = loaded.prune(feeds=[image], fetches=[features, logits])
    return (lambda x: only(tf.constant(x))), (lambda x: pair(tf.constant(x)))


if __name__ == "__main__":
    main()
