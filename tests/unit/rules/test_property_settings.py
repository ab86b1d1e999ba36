"""Property tests are reproducible in `make test`: derandomized unless `make fuzz` asks."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def test_property_tests_run_derandomized_by_default() -> None:
    if os.environ.get("RECLAIM_HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip("make fuzz runs the property tests at random seeds on purpose")
    assert settings.default.derandomize is True
    assert settings.default.deadline is None


def test_derandomized_examples_do_not_depend_on_the_modules_loaded(tmp_path: Path) -> None:
    # Hypothesis draws constants from the source of loaded local modules; loading one between
    # two runs of the same derandomized test must not change what it generates.
    if os.environ.get("RECLAIM_HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip("make fuzz runs the property tests at random seeds on purpose")
    seen: list[list[int]] = []

    @settings(max_examples=300, derandomize=True, database=None)
    @given(st.lists(st.integers(0, 10**6), min_size=4, max_size=4))
    def record(values: list[int]) -> None:
        seen[-1].append(sum(values))

    seen.append([])
    record()
    module = tmp_path / "lots_of_constants.py"
    module.write_text(
        "VALUES = [" + ", ".join(str(101 + 7919 * i) for i in range(120)) + "]\n",
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("lots_of_constants", module)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules["lots_of_constants"] = loaded
    try:
        spec.loader.exec_module(loaded)
        seen.append([])
        record()
    finally:
        del sys.modules["lots_of_constants"]
    assert seen[0] == seen[1]
