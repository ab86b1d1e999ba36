"""reclaim-infra.yaml and HCL: declared and inferred edges, and the errors that name both ends."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reclaim.errors import ConfigError
from reclaim.infra import StackGraph, load_config


def _stack(root: Path, name: str, body: str = "") -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "main.tf").write_text(textwrap.dedent(body))


def _reads(source: str, label: str | None = None) -> str:
    return f"""
        data "terraform_remote_state" "{label or source}" {{
          backend = "local"
          config = {{
            path = "../{source}/terraform.tfstate"
          }}
        }}
        """


def _config(root: Path, text: str) -> Path:
    path = root / "reclaim-infra.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_remote_state_reads_become_edges_beside_declared_ones(tmp_path: Path) -> None:
    _stack(tmp_path, "network")
    _stack(tmp_path, "identity")
    _stack(tmp_path, "app", _reads("network", "net"))
    _stack(tmp_path, "web")
    config = load_config(
        _config(
            tmp_path,
            """\
            global_outputs: [network]
            stacks:
              network: {tracks: main}
              identity: {}
              app: {auto_apply: true}
              web: {depends_on: [app, identity]}
            """,
        )
    )
    edges = {(e.source, e.reader, e.kind) for e in config.edges}
    assert edges == {
        ("app", "web", "declared"),
        ("identity", "web", "declared"),
        ("network", "app", "remote_state"),
    }
    remote = next(e for e in config.edges if e.kind == "remote_state")
    assert remote.location.path.endswith("app/main.tf")
    assert remote.location.line == 2
    graph = StackGraph(config)
    assert graph.order.index("network") < graph.order.index("app") < graph.order.index("web")
    assert graph.depth == {"network": 1, "identity": 1, "app": 2, "web": 3}
    assert graph.select(["network"]) == ("network", "app", "web")
    assert graph.select(["identity"]) == ("identity", "web")


def test_backend_block_is_the_stack_state_that_others_read(tmp_path: Path) -> None:
    _stack(
        tmp_path,
        "network",
        """
        terraform {
          backend "local" {
            path = "../states/network.tfstate"
          }
        }
        """,
    )
    _stack(
        tmp_path,
        "app",
        """
        data "terraform_remote_state" "net" {
          backend = "local"
          config = { path = "../states/network.tfstate" }
        }
        """,
    )
    config = load_config(_config(tmp_path, "stacks: {network: {}, app: {}}\n"))
    assert [(e.source, e.reader) for e in config.edges] == [("network", "app")]


def test_unknown_dependency_names_both_stacks_and_the_line(tmp_path: Path) -> None:
    _stack(tmp_path, "network")
    _stack(tmp_path, "app")
    path = _config(
        tmp_path,
        """\
        stacks:
          network: {}
          app:
            depends_on:
              - netwrk
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}:5" in message
    assert "'app' depends on unknown stack 'netwrk'" in message
    assert "did you mean 'network'?" in message


def test_remote_state_of_no_stack_is_an_error_at_its_line(tmp_path: Path) -> None:
    _stack(tmp_path, "app", "\n\n" + _reads("elsewhere"))
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, "stacks: {app: {}}\n"))
    message = str(caught.value)
    assert "app/main.tf:4" in message
    assert "elsewhere/terraform.tfstate" in message


def test_cycle_names_every_stack_on_it_and_where_each_edge_is(tmp_path: Path) -> None:
    _stack(tmp_path, "a", _reads("c"))
    _stack(tmp_path, "b")
    _stack(tmp_path, "c")
    _stack(tmp_path, "d")
    path = _config(
        tmp_path,
        """\
        stacks:
          a: {}
          b: {depends_on: [a]}
          c: {depends_on: [b]}
          d: {depends_on: [a]}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        StackGraph(load_config(path))
    message = str(caught.value)
    assert "stacks form a cycle: a -> b -> c -> a" in message
    assert f"b depends on a ({path}:3:" in message
    assert f"c depends on b ({path}:4:" in message
    assert "a reads the remote state of c (" in message
    assert "a/main.tf:2)" in message
    assert "d depends" not in message


def test_unknown_keys_and_missing_folders_are_errors_with_lines(tmp_path: Path) -> None:
    _stack(tmp_path, "a")
    with pytest.raises(ConfigError, match=r"yaml:3:5: stack 'a': unknown key 'auto'.*auto_apply"):
        load_config(_config(tmp_path, "stacks:\n  a:\n    auto: true\n"))
    with pytest.raises(ConfigError, match=r"folder .*missing does not exist"):
        load_config(_config(tmp_path, "stacks:\n  b: {path: missing}\n"))
    with pytest.raises(ConfigError, match="global_outputs names unknown stack 'x'"):
        load_config(_config(tmp_path, "global_outputs: [x]\nstacks: {a: {}}\n"))


def test_graph_renders_text_dot_and_mermaid(tmp_path: Path) -> None:
    _stack(tmp_path, "network")
    _stack(tmp_path, "app", _reads("network"))
    graph = StackGraph(
        load_config(
            _config(
                tmp_path,
                "global_outputs: [network]\nstacks: {network: {}, app: {auto_apply: true}}\n",
            )
        )
    )
    assert graph.render("text") == (
        "level 1\n  network [global]\nlevel 2\n  app [auto-apply]\n    <- network (remote state)\n"
    )
    dot = graph.render("dot")
    assert '"network" -> "app" [style=dashed];' in dot
    assert dot.startswith("digraph stacks {")
    assert graph.render("mermaid") == (
        'flowchart LR\n  s0["network [global]"]\n  s1["app [auto-apply]"]\n  s0 -.-> s1\n'
    )
