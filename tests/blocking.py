"""Calls that must not block (a FIFO opened for reading waits for a writer): fail the test, never hang it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest


def within(seconds: float, call: Callable[[], object], fifo: Path | None = None) -> object:
    """``call()``'s result or raised exception, failing the test (not hanging it) past ``seconds``.

    A reader stuck in ``open`` of a FIFO is released afterwards by opening the FIFO for writing.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["value"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:  # let the stuck reader see end-of-file so the thread ends
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"still blocked after {seconds} s")
    return outcome["value"]
