"""The offline EfficientNet-Lite2: torch-free pickle reader, TF1 Hub module export, real predictions."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from lookalike.embedder.lite2 import export, network
from lookalike.embedder.lite2.torch_pickle import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    TorchPickleError,
    read_state_dict,
    read_state_dict_bytes,
)

DATA = Path(__file__).resolve().parent.parent / "data"
LABELS = Path(__file__).resolve().parent.parent / "lookalike" / "embedder" / "imagenet_labels.txt"


# --- a tiny writer of the legacy torch format (what torch.save did before the zip format) ------------


class _Storage:
    """What the writer pickles for a storage: its key, dtype name and flat data."""

    def __init__(self, key: str, type_name: str, data: np.ndarray) -> None:
        self.key, self.type_name, self.data = key, type_name, data


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-ins registered as ``torch``/``torch._utils`` so pickle writes the real global names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_types = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storage_types[name] = cls
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(rebuild=_rebuild_tensor_v2, storage_types=storage_types)


def _write_legacy(obj: dict, fake: types.SimpleNamespace, extra_globals: object = None) -> bytes:
    storages: dict[str, _Storage] = {}

    class Writer(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, _Storage):
                storages[o.key] = o
                return ("storage", fake.storage_types[o.type_name], o.key, "cpu", o.data.size)
            return None

        def reducer_override(self, o):
            if isinstance(o, _Tensor):
                hooks = collections.OrderedDict()
                return fake.rebuild, (o.storage, o.offset, o.shape, o.stride, False, hooks)
            return NotImplemented

    out = io.BytesIO()
    sys_info = {"protocol_version": 1001, "little_endian": True}
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, sys_info):
        pickle.dump(header, out, protocol=2)
    Writer(out, protocol=2).dump(obj if extra_globals is None else extra_globals)
    pickle.dump(list(storages), out, protocol=2)
    for key in storages:
        data = storages[key].data
        out.write(struct.pack("<q", data.size))
        out.write(data.astype(data.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def test_reader_rebuilds_tensors_views_and_shared_storages(monkeypatch):
    fake = _fake_torch(monkeypatch)
    flat = np.arange(24, dtype=np.float32)
    shared = _Storage("0", "FloatStorage", flat)
    counts = _Storage("1", "LongStorage", np.array([7], dtype=np.int64))
    state = collections.OrderedDict(
        [
            ("conv.weight", _Tensor(shared, 0, (2, 3, 4), (12, 4, 1))),
            ("conv.weight_t", _Tensor(shared, 0, (4, 3, 2), (1, 4, 12))),  # a transposed view
            ("tail", _Tensor(shared, 20, (4,), (1,))),  # an offset into the same storage
            ("bn.num_batches_tracked", _Tensor(counts, 0, (), ())),
        ]
    )
    blob = _write_legacy(state, fake)
    monkeypatch.delitem(sys.modules, "torch")  # the reader must not need torch
    monkeypatch.delitem(sys.modules, "torch._utils")
    sd = read_state_dict_bytes(blob)
    assert list(sd) == ["conv.weight", "conv.weight_t", "tail", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(sd["conv.weight"], flat.reshape(2, 3, 4))
    np.testing.assert_array_equal(sd["conv.weight_t"], flat.reshape(2, 3, 4).transpose(2, 1, 0))
    np.testing.assert_array_equal(sd["tail"], [20, 21, 22, 23])
    assert sd["conv.weight"].dtype == np.float32 and sd["conv.weight"].flags.c_contiguous
    assert sd["bn.num_batches_tracked"].shape == () and int(sd["bn.num_batches_tracked"]) == 7


def test_reader_refuses_arbitrary_classes(monkeypatch):
    fake = _fake_torch(monkeypatch)
    import os

    blob = _write_legacy({}, fake, extra_globals={"x": os.getcwd})
    with pytest.raises(TorchPickleError, match="refusing"):
        read_state_dict_bytes(blob)


def test_reader_refuses_other_files():
    with pytest.raises(TorchPickleError, match="magic"):
        read_state_dict_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(TorchPickleError):
        read_state_dict_bytes(b"PK\x03\x04 a zip-format torch file")


def test_reader_refuses_truncated_storage(monkeypatch):
    fake = _fake_torch(monkeypatch)
    storage = _Storage("0", "FloatStorage", np.ones(8, np.float32))
    blob = _write_legacy({"w": _Tensor(storage, 0, (8,), (1,))}, fake)
    with pytest.raises(TorchPickleError, match="truncated"):
        read_state_dict_bytes(blob[:-4])


def test_real_checkpoint_reads_without_torch_and_matches_lite2():
    assert "torch" not in sys.modules
    sd = read_state_dict(export.weights_path())
    assert len(sd) == 386
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.20._depthwise_conv.weight"].shape == (1248, 1, 3, 3)
    assert sd["_conv_head.weight"].shape == (1280, 352, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in sd)
    assert all(v.min() >= 0 for k, v in sd.items() if k.endswith("running_var"))  # 0 on dead channels
    assert all(np.isfinite(v).all() for v in sd.values())
    converted = network.convert_state_dict(sd)  # checks every block's shapes
    assert converted["stem/conv/kernel"].shape == (3, 3, 3, 32)
    assert converted["blocks_4/depthwise/kernel"].shape == (5, 5, 144, 1)
    assert len(network.blocks()) == 21


def test_conversion_refuses_a_different_structure():
    sd = read_state_dict(export.weights_path())
    sd["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match="_blocks.3._depthwise_conv.weight"):
        network.convert_state_dict(sd)


def test_module_def_is_format_v3():
    assert export.module_def_bytes() == b"\x08\x03"  # field 1 (format), varint 3 (FORMAT_V3)


def test_killed_build_leaves_no_module(tmp_path, monkeypatch):
    def die(export_dir, weights):
        (export_dir / "variables").mkdir(parents=True)
        (export_dir / "saved_model.pb").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_saved_model", die)
    target = tmp_path / "cache" / "lite2"
    with pytest.raises(KeyboardInterrupt):
        export.build_module(target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


# --- the converted module, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lite2_dir(tmp_path_factory) -> Path:
    from lookalike.embedder.lite2 import ensure_module

    return ensure_module(tmp_path_factory.mktemp("tfhub"))


@pytest.fixture(scope="module")
def lite2(lite2_dir):
    import tensorflow_hub as hub

    return hub.load(str(lite2_dir))


def _photo(path: Path, size: int = network.INPUT_SIZE) -> np.ndarray:
    """Exactly the product's preprocessing (centre crop size/(size+32), bicubic, [0, 1])."""
    from lookalike.embedder.images import load_image

    return load_image(path, size).pixels


@pytest.mark.slow
def test_module_layout_is_a_tf1_hub_module(lite2_dir):
    from lookalike.embedder.lite2 import LITE2_MODULE_VERSION, ensure_module

    assert lite2_dir.name.endswith(f"-v{LITE2_MODULE_VERSION}")
    assert (lite2_dir / "tfhub_module.pb").read_bytes() == b"\x08\x03"
    weights_bytes = sum(p.stat().st_size for p in (lite2_dir / "variables").iterdir())
    assert weights_bytes > 20_000_000  # the weights are variables ...
    assert (lite2_dir / "saved_model.pb").stat().st_size < 2_000_000  # ... not graph constants
    mtime = (lite2_dir / "saved_model.pb").stat().st_mtime_ns
    assert ensure_module(lite2_dir.parent) == lite2_dir  # second use: no rebuild
    assert (lite2_dir / "saved_model.pb").stat().st_mtime_ns == mtime
    assert [p.name for p in lite2_dir.parent.iterdir()] == [lite2_dir.name]


@pytest.mark.slow
def test_signatures_share_one_placeholder_and_prune_fetches_both(lite2):
    import tensorflow as tf

    assert {"default", "image_classification", "image_feature_vector"} <= set(lite2.signatures)
    x = tf.constant(np.random.default_rng(0).random((2, 260, 260, 3), dtype=np.float32))
    features = lite2.signatures["image_feature_vector"](images=x)["default"]
    logits = lite2.signatures["image_classification"](images=x)["default"]
    assert features.shape == (2, 1280) and logits.shape == (2, 1000)
    np.testing.assert_array_equal(lite2.signatures["default"](images=x)["default"], logits)
    feed = lite2.signatures["image_feature_vector"].inputs[0].name
    assert feed == lite2.signatures["image_classification"].inputs[0].name == "images:0"
    fetches = [
        lite2.signatures["image_feature_vector"].outputs[0].name,
        lite2.signatures["image_classification"].outputs[0].name,
    ]
    both = lite2.prune(feeds=[feed], fetches=fetches)
    pruned_features, pruned_logits = both(x)
    np.testing.assert_allclose(pruned_features, features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pruned_logits, logits, rtol=1e-5, atol=1e-5)
    other_size = both(tf.constant(np.zeros((1, 224, 300, 3), np.float32)))  # flexible input size
    assert other_size[0].shape == (1, 1280)


EXPECTED = {
    # photo: (acceptable ImageNet indices, must the top-1 be one of them)
    "cat.jpg": ({281, 282, 285}, True),  # tabby, tiger cat, Egyptian cat
    "espresso.jpg": ({967}, True),  # espresso
    "cameraman.jpg": ({872}, True),  # tripod
    "rocket.jpg": ({657, 744, 812}, False),  # missile, projectile, space shuttle
}


@pytest.mark.slow
def test_real_photos_get_the_right_imagenet_classes(lite2):
    import tensorflow as tf

    labels = LABELS.read_text(encoding="utf8").splitlines()
    assert labels[281].startswith("tabby") and labels[967].startswith("espresso")
    names = sorted(EXPECTED)
    batch = np.stack([_photo(DATA / name) for name in names])
    assert batch.shape == (len(names), 260, 260, 3) and batch.min() >= 0.0 and batch.max() <= 1.0
    logits = lite2.signatures["image_classification"](images=tf.constant(batch))["default"].numpy()
    probs = tf.nn.softmax(logits).numpy()
    report = []
    for name, row in zip(names, probs, strict=True):
        top5 = [int(i) for i in np.argsort(-row)[:5]]
        report.append(f"{name}: " + ", ".join(f"{labels[i].split(',')[0]} ({i}) {row[i]:.2f}" for i in top5))
    print("\n".join(report))
    for (name, row), line in zip(zip(names, probs, strict=True), report, strict=True):
        wanted, top1 = EXPECTED[name]
        top5 = [int(i) for i in np.argsort(-row)[:5]]
        assert wanted & set(top5), line
        if top1:
            assert top5[0] in wanted, line


@pytest.mark.slow
def test_conversion_is_deterministic(lite2_dir, tmp_path):
    """Index fingerprints digest the module's files: two machines converting must get the same bytes."""
    again = export.build_module(tmp_path / "again")
    files = sorted(p.relative_to(lite2_dir) for p in lite2_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (lite2_dir / rel).read_bytes() == (again / rel).read_bytes(), rel
