"""Property tests are reproducible in `make test`: derandomized unless `make fuzz` asks."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings


def test_property_tests_run_derandomized_by_default() -> None:
    if os.environ.get("RECLAIM_HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip("make fuzz runs the property tests at random seeds on purpose")
    assert settings.default.derandomize is True
    assert settings.default.deadline is None
