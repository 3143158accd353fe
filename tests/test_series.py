# SPDX-License-Identifier: Apache-2.0
"""The real patch series against the real releases: it parses, fits the
budget, applies with no fuzz and no offset to the pinned 0.25.1 and with no
fuzz to 0.32.0 and 0.33.0 (tools/fork.py check --all; the sdists are fetched
from PyPI once and cached in .cache/upstream)."""

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tool


def test_series_applies_to_every_carried_release():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "fork.py"), "check", "--all"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check: ok (applies to vllm 0.25.1, 0.32.0, 0.33.0)" in result.stdout + result.stderr
