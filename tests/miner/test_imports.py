"""Importing ``kalepool.miner`` is cheap: numba loads only when the kernel is first used.

(The layering rules themselves are checked by ``tests/test_layering.py``.)
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_miner_does_not_import_numba() -> None:
    code = "import sys, kalepool.miner; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
