"""Polars, imported on first use rather than when the rules engine is imported.

Importing Polars takes longer than everything else ``reclaim rules check`` needs together, and
checking or evaluating rules row by row never touches it. Modules that build Polars
expressions write ``from reclaim.rules.expression.lazy import polars as pl`` (under
``TYPE_CHECKING`` they import the real module, so types are unchanged).
"""

from __future__ import annotations

__all__ = ["polars"]

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    """A stand-in that imports the named module on the first attribute read, then keeps each
    attribute it hands out (module-level names such as ``col`` and ``lit`` never change)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        module = importlib.import_module(self.__dict__["_lazy_target"])
        value = getattr(module, attribute)
        self.__dict__[attribute] = value
        return value


polars: Any = _LazyModule("polars")
