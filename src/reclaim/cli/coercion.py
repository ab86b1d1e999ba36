"""Command-line values converted without pydantic where a constructor is all it takes.

Typer 0.29 converts the value of every parameter, defaults and absent options included,
through a pydantic ``TypeAdapter`` that it builds the first time the parameter is used.
Importing pydantic for that was a fifth of the start of ``reclaim rules check`` (issue 9,
item 13). Text, paths, lists of them, an absent value, and a value that already has its
parameter's type need no validation library: :func:`use_plain_converters` gives each parameter
a converter that returns for those what Typer's adapter returns, and hands every other value
(and any path that fails one of Typer's checks, so that Typer reports it in its own words) to
the converter Typer would have built. A Typer without this machinery (before 0.29, Click
converts the values) is left alone.
"""

from __future__ import annotations

__all__ = ["PlainConverter", "use_plain_converters"]

import importlib
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any, get_args, get_origin


def _typer_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# Typer's private module, reached by name so that another Typer version only turns the
# shortcut off (every value then goes through Typer's own converter), never breaks a command.
_coercion = _typer_module("typer._coercion")
_AVAILABLE = _coercion is not None and hasattr(_coercion, "build_runtime_param")

# A value the plain converter does not take: Typer's converter decides.
_NOT_PLAIN = object()


class PlainConverter:
    """Stands in for Typer's converter of one parameter (its ``RuntimeParam``).

    ``coerce`` is called by Typer with the parsed value (a string, a tuple of them for a
    repeated option or argument, or the default); it returns what Typer's pydantic adapter
    would return for the same value.
    """

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor
        annotation = descriptor.annotation
        self.is_list = get_origin(annotation) is list
        self.item_annotation = get_args(annotation)[0] if self.is_list else annotation
        info = descriptor.parameter_info
        # Typer's adapter takes a parser, a file or a path type over everything else.
        self.plain = (
            descriptor.file_annotation is None
            and info.parser is None
            and getattr(info, "path_type", None) is None
            and (not self.is_list or len(get_args(annotation)) == 1)
        )
        self.unbounded = getattr(info, "min", None) is None and getattr(info, "max", None) is None
        self._typer_converter: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        # As Typer's RuntimeParam.coerce: an absent value needs no adapter at all.
        many = param.multiple or param.nargs == -1
        if value is None:
            return () if many else None
        if self.plain and not (many and isinstance(value, str)):
            if self.is_list:
                items = value if isinstance(value, list | tuple) else [value]
                converted = [self._item(item) for item in items]
                if not any(item is _NOT_PLAIN for item in converted):
                    return converted
            else:
                result = self._item(value)
                if result is not _NOT_PLAIN:
                    return result
        return self.typer_converter().coerce(value, param=param, ctx=ctx)

    def typer_converter(self) -> Any:
        """The converter Typer builds for this parameter (importing pydantic)."""
        if self._typer_converter is None:
            assert _coercion is not None
            self._typer_converter = _coercion.build_runtime_param(self.descriptor)
        return self._typer_converter

    def _item(self, value: Any) -> Any:
        annotation = self.item_annotation
        if annotation is str:
            # Typer's adapter returns str(value): a string as it is.
            return value if type(value) is str else _NOT_PLAIN
        if annotation is Path:
            return self._path(value)
        if annotation in (int, float) and type(value) is annotation and self.unbounded:
            # A default of the parameter's own type: pydantic returns it unchanged.
            return value
        return _NOT_PLAIN

    def _path(self, value: Any) -> Any:
        """``Path(value)`` when every check Typer makes of it passes; otherwise Typer's
        converter runs the checks again and reports the failure in its own words."""
        info = self.descriptor.parameter_info
        if not isinstance(value, str | Path) or info.resolve_path or info.allow_dash:
            return _NOT_PLAIN
        path = value if isinstance(value, Path) else Path(value)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return _NOT_PLAIN if info.exists else path
        if (
            (not info.file_okay and stat.S_ISREG(mode))
            or (not info.dir_okay and stat.S_ISDIR(mode))
            or (info.readable and not os.access(path, os.R_OK))
            or (info.writable and not os.access(path, os.W_OK))
        ):
            return _NOT_PLAIN
        return path


def use_plain_converters() -> None:
    """Make every Typer parameter in this process convert its values through a
    :class:`PlainConverter`, which hands what it does not take to Typer's own converter.

    Typer builds a parameter's converter the first time the parameter is used, including the
    ``--help`` and completion options it adds to every command on the fly, so the converter
    is chosen there, in Typer's one place for it, rather than parameter by parameter.
    """
    parameter_class: Any = getattr(_typer_module("typer.core"), "_TyperParameter", None)
    if not _AVAILABLE or not callable(getattr(parameter_class, "get_runtime_param", None)):
        return
    if getattr(parameter_class, "_reclaim_plain_converters", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = PlainConverter(self.type_descriptor)
        return self._runtime_param

    parameter_class.get_runtime_param = get_runtime_param
    parameter_class._reclaim_plain_converters = True
