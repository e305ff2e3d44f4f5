"""Tiny TF-Hub modules built by the tests, with the exact conventions of the real EfficientNet modules.

Their "features" are a 4x4 colour thumbnail of the image (so similar pictures get similar vectors, which
index tests rely on) scaled by a variable, and their logits a fixed random projection of those features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

FEATURE_GRID = 4
FEATURE_DIM = FEATURE_GRID * FEATURE_GRID * 3


def _encode_field(number: int, payload: bytes | int) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def image_module_info(size: int) -> bytes:
    """A serialized hub ModuleAttachment holding ImageModuleInfo(default_image_size=size x size)."""
    input_size = _encode_field(1, size) + _encode_field(2, size)
    info = _encode_field(1, input_size)
    return _encode_field(1, b"image_module_info") + _encode_field(2, info)


def _projection(classes: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(FEATURE_DIM, classes)).astype(np.float32)


def build_tf1_module(target: Path, classes: int | None = 1000, declared_size: int | None = None) -> Path:
    """Legacy TF1 Hub format: tfhub_module.pb + SavedModel with an empty tag set, signatures on `images`."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="images")
        scale = tf.compat.v1.get_variable("scale", initializer=tf.constant(2.0))
        grid = tf.image.resize(images, [FEATURE_GRID, FEATURE_GRID], method="area")
        features = tf.reshape(grid, [-1, FEATURE_DIM]) * scale
        signatures = {
            "image_feature_vector": tf.compat.v1.saved_model.predict_signature_def(
                {"images": images}, {"default": features}
            )
        }
        if classes:
            weights = tf.compat.v1.get_variable("logits_w", initializer=tf.constant(_projection(classes)))
            logits = tf.matmul(features, weights)
            for name in ("default", "image_classification"):
                signatures[name] = tf.compat.v1.saved_model.predict_signature_def(
                    {"images": images}, {"default": logits}
                )
        if declared_size:
            tf.compat.v1.add_to_collection("hub_module_attachments", image_module_info(declared_size))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(session, [], signature_def_map=signatures)
            builder.save()
    (target / "tfhub_module.pb").write_bytes(_encode_field(1, 3))  # ModuleDef(format=FORMAT_V3)
    return target


class _Tf2Module(tf.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.weights = tf.Variable(_projection(1000))
        spec = tf.TensorSpec([None, size, size, 3], tf.float32)
        self.features = tf.function(self._features, input_signature=[spec])
        self.classify = tf.function(self._classify, input_signature=[spec])

    def _features(self, images):
        grid = tf.image.resize(images, [FEATURE_GRID, FEATURE_GRID], method="area")
        return {"default": tf.reshape(grid, [-1, FEATURE_DIM]) * self.scale}

    def _classify(self, images):
        return {"default": tf.matmul(self._features(images)["default"], self.weights)}


def build_tf2_module(target: Path, size: int = 64) -> Path:
    """A TF2 SavedModel with the same two signatures and a static input size."""
    module = _Tf2Module(size)
    tf.saved_model.save(
        module,
        str(target),
        signatures={
            "image_feature_vector": module.features.get_concrete_function(),
            "image_classification": module.classify.get_concrete_function(),
        },
    )
    return target
