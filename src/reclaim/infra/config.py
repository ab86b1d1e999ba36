"""``reclaim-infra.yaml``: the stacks of a repository, their declared and inferred dependencies.

A stack is a Terraform/OpenTofu root module (a folder). Its dependencies are the union of those
declared under ``depends_on`` and those inferred from its ``terraform_remote_state`` data
sources: a remote state whose backend settings name another stack's state is an edge. The HCL is
read with python-hcl2, a real parser, never with regular expressions over the text.
"""

from __future__ import annotations

__all__ = [
    "CONFIG_FILE",
    "Edge",
    "InfraConfig",
    "Stack",
    "StateAddress",
    "load_config",
]

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reclaim.errors import ConfigError, SourceLocation

CONFIG_FILE: Final = "reclaim-infra.yaml"

_TOP_KEYS: Final = frozenset(
    {"terraform", "parallelism", "policies", "global_outputs", "state_dir", "stacks"}
)
_STACK_KEYS: Final = frozenset({"path", "depends_on", "auto_apply", "tracks", "vars"})

EdgeKind = Literal["declared", "remote_state"]


@dataclass(frozen=True)
class StateAddress:
    """Where a stack's state lives, in a form two configurations can be compared by.

    ``backend`` is the backend type; ``key`` its identifying settings (an absolute path for
    ``local``, bucket and key for ``s3``, …).
    """

    backend: str
    key: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"{self.backend}(" + ", ".join(f"{k}={v}" for k, v in self.key) + ")"


@dataclass(frozen=True)
class Edge:
    """``reader`` depends on ``source``: declared in the YAML or read through remote state."""

    source: str
    reader: str
    kind: EdgeKind
    location: SourceLocation


@dataclass(frozen=True)
class Stack:
    """One root module and what the configuration says about it."""

    name: str
    path: Path
    auto_apply: bool
    tracks: str | None
    location: SourceLocation
    variables: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    state: StateAddress | None = None

    @property
    def local_state(self) -> Path | None:
        """The state file when the backend is ``local`` (read directly, no Terraform process)."""
        if self.state is not None and self.state.backend == "local":
            return Path(dict(self.state.key)["path"])
        return None


@dataclass(frozen=True)
class InfraConfig:
    """A loaded, checked ``reclaim-infra.yaml`` (the graph is checked by :class:`StackGraph`)."""

    path: Path
    root: Path
    terraform: str
    parallelism: int
    policies: tuple[Path, ...]
    global_outputs: tuple[str, ...]
    state_dir: Path
    stacks: Mapping[str, Stack]
    edges: tuple[Edge, ...]

    def stack(self, name: str) -> Stack:
        try:
            return self.stacks[name]
        except KeyError:
            raise ConfigError(
                f"unknown stack {name!r}",
                location=SourceLocation(str(self.path)),
                fix="known stacks: " + ", ".join(sorted(self.stacks)),
            ) from None


def load_config(path: str | os.PathLike[str]) -> InfraConfig:
    """Read and check ``reclaim-infra.yaml`` (or the one inside the folder ``path``).

    Every error names the file and line and says what to change. The graph's cycles are
    checked by :class:`reclaim.infra.graph.StackGraph`, built from the result.
    """
    file = Path(path)
    if file.is_dir():
        file = file / CONFIG_FILE
    if not file.is_file():
        raise ConfigError(
            f"no infra configuration at {file}",
            fix=f"create {CONFIG_FILE} listing the stacks (see docs/infra.md)",
        )
    where = str(file)
    try:
        document = YAML(typ="rt").load(file.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            location=SourceLocation(where, line),
            fix="fix the YAML syntax",
        ) from exc
    if not isinstance(document, CommentedMap):
        raise ConfigError(
            "the file must be a mapping with a 'stacks' key",
            location=SourceLocation(where, 1),
            fix="see docs/infra.md for the format",
        )
    _no_unknown_keys(document, _TOP_KEYS, where, "top level")
    root = file.parent.resolve()
    terraform = _text(document, "terraform", where, default="terraform")
    parallelism = document.get("parallelism", 4)
    if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1:
        raise ConfigError(
            f"parallelism must be a positive whole number, not {parallelism!r}",
            location=_at(document, "parallelism", where),
            fix="write for example 'parallelism: 4'",
        )
    policies = tuple(root / item for item in _names(document, "policies", where))
    state_dir = root / _text(document, "state_dir", where, default=".reclaim-infra")
    raw_stacks = document.get("stacks")
    if not isinstance(raw_stacks, CommentedMap) or not raw_stacks:
        raise ConfigError(
            "'stacks' must map each stack's name to its settings",
            location=_at(document, "stacks", where) or SourceLocation(where, 1),
            fix="add 'stacks:' with one entry per root module, e.g. 'network: {path: network}'",
        )
    stacks: dict[str, Stack] = {}
    for name, settings in raw_stacks.items():
        stacks[str(name)] = _stack(str(name), settings, raw_stacks, root, where)
    edges: list[Edge] = []
    for stack in stacks.values():
        for index, dependency in enumerate(stack.depends_on):
            location = _item_at(raw_stacks[stack.name], "depends_on", index, where)
            if dependency not in stacks:
                raise ConfigError(
                    f"stack {stack.name!r} depends on unknown stack {dependency!r}",
                    location=location,
                    fix=_suggest(dependency, stacks),
                )
            if dependency == stack.name:
                raise ConfigError(
                    f"stack {stack.name!r} depends on itself",
                    location=location,
                    fix="remove it from its own depends_on",
                )
            edges.append(Edge(dependency, stack.name, "declared", location))
    global_outputs = _names(document, "global_outputs", where)
    for index, name in enumerate(global_outputs):
        if name not in stacks:
            raise ConfigError(
                f"global_outputs names unknown stack {name!r}",
                location=_item_at(document, "global_outputs", index, where),
                fix=_suggest(name, stacks),
            )
    edges.extend(_remote_state_edges(stacks))
    return InfraConfig(
        path=file.resolve(),
        root=root,
        terraform=terraform,
        parallelism=parallelism,
        policies=policies,
        global_outputs=tuple(global_outputs),
        state_dir=state_dir,
        stacks=stacks,
        edges=tuple(_dedupe(edges)),
    )


def _stack(name: str, settings: Any, parent: CommentedMap, root: Path, where: str) -> Stack:
    location = _at(parent, name, where) or SourceLocation(where)
    if settings is None:
        settings = CommentedMap()
    if not isinstance(settings, CommentedMap):
        raise ConfigError(
            f"stack {name!r}: settings must be a mapping",
            location=location,
            fix=f"write '{name}: {{path: {name}}}' or leave it empty",
        )
    _no_unknown_keys(settings, _STACK_KEYS, where, f"stack {name!r}")
    path = root / _text(settings, "path", where, default=name)
    if not path.is_dir():
        raise ConfigError(
            f"stack {name!r}: folder {path} does not exist",
            location=_at(settings, "path", where) or location,
            fix="set 'path' to the stack's root module, relative to " + where,
        )
    auto_apply = settings.get("auto_apply", False)
    if not isinstance(auto_apply, bool):
        raise ConfigError(
            f"stack {name!r}: auto_apply must be true or false, not {auto_apply!r}",
            location=_at(settings, "auto_apply", where),
            fix="write 'auto_apply: true' or 'auto_apply: false'",
        )
    tracks = settings.get("tracks")
    if tracks is not None and not isinstance(tracks, str):
        raise ConfigError(
            f"stack {name!r}: tracks must be a branch or tag name",
            location=_at(settings, "tracks", where),
            fix="write for example 'tracks: main'",
        )
    variables = settings.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise ConfigError(
            f"stack {name!r}: vars must map variable names to values",
            location=_at(settings, "vars", where),
            fix="write for example 'vars: {region: eu-west-1}'",
        )
    return Stack(
        name=name,
        path=path.resolve(),
        auto_apply=auto_apply,
        tracks=tracks,
        location=location,
        variables={str(k): str(v) for k, v in variables.items()},
        depends_on=tuple(_names(settings, "depends_on", where)),
        state=own_state_address(path.resolve()),
    )


# ------------------------------------------------------------------ remote state


def _remote_state_edges(stacks: Mapping[str, Stack]) -> Iterator[Edge]:
    owners: dict[StateAddress, str] = {}
    for stack in stacks.values():
        if stack.state is not None:
            owners.setdefault(stack.state, stack.name)
    for stack in stacks.values():
        for address, location in remote_state_reads(stack.path):
            source = owners.get(address)
            if source is None:
                if address.backend == "local":
                    raise ConfigError(
                        f"stack {stack.name!r} reads the state {dict(address.key)['path']} "
                        "through terraform_remote_state, which is no stack's state",
                        location=location,
                        fix="add the stack that writes it to reclaim-infra.yaml, or fix the path",
                    )
                continue  # another backend: state owned outside this repository
            if source == stack.name:
                raise ConfigError(
                    f"stack {stack.name!r} reads its own state through terraform_remote_state",
                    location=location,
                    fix="use the resource directly instead of its own remote state",
                )
            yield Edge(source, stack.name, "remote_state", location)


def own_state_address(folder: Path) -> StateAddress:
    """The state a root module writes: its ``backend`` block, or the local default."""
    for block, _location in _blocks(folder, "terraform"):
        for backend in _as_list(block.get("backend")):
            for kind, settings in backend.items():
                if kind.startswith("__"):
                    continue
                return _address(_unquote(kind), settings, folder)
    return StateAddress("local", (("path", str((folder / "terraform.tfstate").resolve())),))


def remote_state_reads(folder: Path) -> Iterator[tuple[StateAddress, SourceLocation]]:
    """Each ``terraform_remote_state`` data source of the module, with its file and line."""
    for data, location_of in _blocks(folder, "data"):
        for kind, named in data.items():
            if _unquote(kind) != "terraform_remote_state" or not isinstance(named, Mapping):
                continue
            for label, body in named.items():
                if label.startswith("__") or not isinstance(body, Mapping):
                    continue
                backend = _unquote(str(body.get("backend", "local")))
                config = body.get("config") or {}
                if isinstance(config, list):  # older python-hcl2 wraps objects in a list
                    config = config[0] if config else {}
                yield _address(backend, config, folder), location_of(_unquote(label))


def _address(backend: str, settings: Any, folder: Path) -> StateAddress:
    values: dict[str, str] = {}
    if isinstance(settings, Mapping):
        for key, value in settings.items():
            if not key.startswith("__") and isinstance(value, str | int | float | bool):
                values[_unquote(key)] = _unquote(str(value))
    if backend == "local":
        raw = values.get("path", "terraform.tfstate")
        return StateAddress("local", (("path", str((folder / raw).resolve())),))
    identifying = {
        "s3": ("bucket", "key"),
        "gcs": ("bucket", "prefix"),
        "azurerm": ("storage_account_name", "container_name", "key"),
        "http": ("address",),
        "pg": ("conn_str", "schema_name"),
    }.get(backend, tuple(sorted(values)))
    return StateAddress(backend, tuple((k, values.get(k, "")) for k in identifying))


def _blocks(folder: Path, kind: str) -> Iterator[tuple[dict[str, Any], Any]]:
    import hcl2  # imported here: parsing HCL is only needed when a configuration is loaded

    for file in sorted(folder.glob("*.tf")):
        text = file.read_text(encoding="utf-8")
        try:
            document = hcl2.loads(text)
        except Exception as exc:  # python-hcl2 raises lark errors of several classes
            line = getattr(exc, "line", None)
            raise ConfigError(
                f"cannot parse HCL: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                location=SourceLocation(str(file), line if isinstance(line, int) else None),
                fix="run 'terraform validate' in the stack's folder",
            ) from exc
        lines = text.splitlines()

        def location_of(label: str, _file: Path = file, _lines: list[str] = lines) -> Any:
            # python-hcl2 keeps no line numbers on blocks: the line is looked up by the
            # block's labels only to point the user at it, never to decide anything.
            for number, line in enumerate(_lines, start=1):
                if "terraform_remote_state" in line and f'"{label}"' in line:
                    return SourceLocation(str(_file), number)
            return SourceLocation(str(_file))

        for block in _as_list(document.get(kind)):
            if isinstance(block, dict):
                yield block, location_of


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


# ----------------------------------------------------------------------- YAML


def _at(node: Any, key: Any, where: str) -> SourceLocation | None:
    if isinstance(node, CommentedMap) and key in node:
        try:
            line, column = node.lc.key(key)
        except (KeyError, TypeError):
            return SourceLocation(where)
        return SourceLocation(where, line + 1, column + 1)
    return None


def _item_at(node: Any, key: str, index: int, where: str) -> SourceLocation:
    value = node.get(key) if isinstance(node, CommentedMap) else None
    if isinstance(value, CommentedSeq):
        try:
            line, column = value.lc.item(index)
            return SourceLocation(where, line + 1, column + 1)
        except (KeyError, TypeError):
            pass
    return _at(node, key, where) or SourceLocation(where)


def _text(node: CommentedMap, key: str, where: str, *, default: str) -> str:
    value = node.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"'{key}' must be non-empty text, not {value!r}",
            location=_at(node, key, where),
            fix=f"write for example '{key}: {default}'",
        )
    return value


def _names(node: CommentedMap, key: str, where: str) -> list[str]:
    value = node.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            f"'{key}' must be a list of names",
            location=_at(node, key, where),
            fix=f"write for example '{key}: [network, identity]'",
        )
    return [str(item) for item in value]


def _no_unknown_keys(node: CommentedMap, allowed: frozenset[str], where: str, what: str) -> None:
    for key in node:
        if key not in allowed:
            raise ConfigError(
                f"{what}: unknown key {key!r}",
                location=_at(node, key, where),
                fix="allowed keys: " + ", ".join(sorted(allowed)),
            )


def _suggest(name: str, stacks: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(stacks), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known stacks: " + ", ".join(sorted(stacks))


def _dedupe(edges: list[Edge]) -> Iterator[Edge]:
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        if (edge.source, edge.reader) not in seen:
            seen.add((edge.source, edge.reader))
            yield edge
