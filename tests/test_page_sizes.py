"""One way to print sizes: the page's fileSize (static/app.js) answers as human_size, which the command
line and the HTML report use. Run by node when it is installed (the page's code needs no browser)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import lookalike.server
from lookalike.index.report import human_size

NODE = shutil.which("node")
SIZES = [0, 1, 999, 1000, 1049, 59_176, 999_949, 1_000_000, 231_638_000, 5 * 10**9, 12 * 10**12]


@pytest.mark.skipif(NODE is None, reason="needs node to run the page's JavaScript")
def test_the_page_prints_sizes_as_the_command_line_does():
    app_js = (Path(lookalike.server.__file__).parent / "static" / "app.js").read_text()
    function = re.search(r"^function fileSize\(bytes\) \{$.*?^\}$", app_js, re.MULTILINE | re.DOTALL)
    assert function, "static/app.js defines fileSize(bytes)"
    script = f"{function.group(0)}\nconsole.log(JSON.stringify({SIZES}.map(fileSize)));"
    done = subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(done.stdout) == [human_size(n) for n in SIZES]
