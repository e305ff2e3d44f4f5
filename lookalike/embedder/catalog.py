"""Friendly model names, so users type ``efficientnet-b2`` rather than a TF-Hub URL.

Input sizes are the ones each network was trained at; a module's own declared size is only consulted for
handles that are not in this catalog.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    handle: str
    input_size: int
    offline: bool = False


OFFLINE_HANDLE = "lookalike:efficientnet-lite2"
DEFAULT_MODEL = "efficientnet-b2"
OFFLINE_MODEL = "efficientnet-lite2"

_B_SIZES = {0: 224, 1: 240, 2: 260, 3: 300, 4: 380, 5: 456, 6: 528, 7: 600}

CATALOG: dict[str, CatalogEntry] = {
    f"efficientnet-b{n}": CatalogEntry(
        f"efficientnet-b{n}", f"https://tfhub.dev/google/efficientnet/b{n}/classification/1", size
    )
    for n, size in _B_SIZES.items()
}
CATALOG[OFFLINE_MODEL] = CatalogEntry(OFFLINE_MODEL, OFFLINE_HANDLE, 260, offline=True)


def lookup(model: str) -> CatalogEntry | None:
    """The catalog entry for a friendly name or for one of the catalogued handles."""
    entry = CATALOG.get(model.lower())
    if entry is not None:
        return entry
    stripped = model.rstrip("/")
    return next((e for e in CATALOG.values() if e.handle == stripped), None)
