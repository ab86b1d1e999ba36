"""Command-line values converted without pydantic (reclaim.cli.coercion) come out as Typer's
own converter gives them, and every value it does not take is still Typer's to convert."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer._coercion import build_runtime_param

from reclaim.cli.app import LAZY_COMMANDS, load_command
from reclaim.cli.coercion import PlainConverter

sample = typer.Typer()


@sample.command()
def everything(
    text: Annotated[str, typer.Argument()],
    paths: Annotated[list[Path], typer.Argument()],
    maybe: Annotated[str | None, typer.Option()] = None,
    path: Annotated[Path | None, typer.Option()] = None,
    existing: Annotated[Path | None, typer.Option(exists=True)] = None,
    folder: Annotated[Path | None, typer.Option(file_okay=False)] = None,
    a_file: Annotated[Path | None, typer.Option(dir_okay=False)] = None,
    names: Annotated[list[str] | None, typer.Option()] = None,
    count: Annotated[int, typer.Option()] = 3,
    bounded: Annotated[int, typer.Option(min=1, max=5)] = 3,
    ratio: Annotated[float, typer.Option()] = 0.5,
    flag: Annotated[bool, typer.Option()] = False,
    when: Annotated[datetime.datetime | None, typer.Option()] = None,
) -> None:
    """Every kind of parameter reclaim's commands take."""


def _outcome(converter: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = converter.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # the comparison is of whatever Typer raises
        return "error", (
            type(exc).__name__,
            exc.format_message() if hasattr(exc, "format_message") else str(exc),
        )
    return "value", (type(result).__name__, result)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "rules.yaml").write_text("rules: []\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    return {"file": str(tmp_path / "rules.yaml"), "folder": str(tmp_path / "folder")}


VALUES: list[Any] = [
    None,
    "",
    "x",
    "rules.yaml",
    "./rules/",
    "a//b/",
    "-",
    "3",
    "abc",
    "2026-01-02",
    ("a", "b"),
    ("x",),
    (),
    3,
    0.5,
    7,
    "{file}",
    "{folder}",
    "{file}/",
    ("{file}", "{folder}"),
    Path("."),
]


def _fill(value: Any, tree: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**tree)
    if isinstance(value, tuple):
        return tuple(_fill(item, tree) for item in value)
    return value


def test_every_value_converts_as_typers_own_converter_does(
    tree: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree["folder"])
    command = typer.main.get_command(sample)
    ctx = typer.Context(command)
    compared = 0
    for param in command.params:
        plain = PlainConverter(param.type_descriptor)
        typers = build_runtime_param(param.type_descriptor)
        for raw in VALUES:
            value = _fill(raw, tree)
            assert _outcome(plain, value, param, ctx) == _outcome(typers, value, param, ctx), (
                param.name,
                value,
            )
            compared += 1
    assert compared == len(command.params) * len(VALUES)


def test_an_unreadable_path_is_reported_by_typer(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    secret = tmp_path / "secret.yaml"
    secret.write_text("", encoding="utf-8")
    secret.chmod(0)
    command = typer.main.get_command(sample)
    param = next(param for param in command.params if param.name == "path")
    ctx = typer.Context(command)
    plain = PlainConverter(param.type_descriptor)
    typers = build_runtime_param(param.type_descriptor)
    assert _outcome(plain, str(secret), param, ctx) == _outcome(typers, str(secret), param, ctx)
    assert _outcome(plain, str(secret), param, ctx)[0] == "error"


def test_every_reclaim_parameter_gets_the_plain_converter_when_used() -> None:
    for name in LAZY_COMMANDS:
        commands = [load_command(name)]
        while commands:
            command = commands.pop()
            commands.extend(getattr(command, "commands", {}).values())
            for param in command.params:
                assert isinstance(param.get_runtime_param(), PlainConverter), (name, param.name)
