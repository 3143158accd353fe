# SPDX-License-Identifier: Apache-2.0
"""data/shapes.json is the repo's copy of ../shared/data/shapes.json (the
shared folder does not travel to the GPU machine): they must not drift."""

import json

import pytest

from conftest import REPO, SHAPES

SHARED = REPO.parent / "shared" / "data" / "shapes.json"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is not beside the checkout")
def test_copy_matches_shared():
    assert SHAPES == json.loads(SHARED.read_text())
