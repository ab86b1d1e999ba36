"""Importing the user's modules: one way for every command.

``reclaim worker``, ``reclaim runs resume`` and ``reclaim schedules`` find workflows by
importing ``--module`` names, and must find the same ones: a run a worker can drive must also
be resumable by hand from the same directory. ``reclaim rules … --import`` finds the user's
actions and functions the same way.
"""

from __future__ import annotations

__all__ = ["BUILTIN_WORKFLOW_MODULES", "import_modules"]

import importlib
import os
import sys
from collections.abc import Sequence

from reclaim.errors import ConfigError, SourceLocation

# reclaim's own workflows (the weekly loop, distribution): a run that `reclaim run` started
# must be resumable by `reclaim runs resume ID` and by any worker without naming a module.
BUILTIN_WORKFLOW_MODULES = ("reclaim.pipeline", "reclaim.sync")


def import_modules(modules: Sequence[str] | None, *, kind: str = "workflow module") -> None:
    """Import each module, looking in the current directory first, as ``python -m`` does.

    The ``reclaim`` console script starts with its own directory on the path, not the
    current one, so a project's ``workflows.py`` would not be found without this. For
    workflow modules, reclaim's own (``BUILTIN_WORKFLOW_MODULES``) are imported first.
    """
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    if kind == "workflow module":
        for name in BUILTIN_WORKFLOW_MODULES:
            importlib.import_module(name)
    for name in modules or ():
        try:
            importlib.import_module(name)
        except SyntaxError as exc:
            raise ConfigError(
                f"{kind} {name!r} does not parse: {exc.msg}",
                location=SourceLocation(exc.filename or name, exc.lineno, exc.offset),
                fix="fix the syntax error, then run the command again",
            ) from exc
        except ImportError as exc:
            raise ConfigError(
                f"cannot import {kind} {name!r}: {exc}",
                fix="give a dotted module name importable from the current directory or "
                "PYTHONPATH (e.g. myproject.workflows), installed in this environment",
            ) from exc
