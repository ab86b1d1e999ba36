"""Small stack repositories for the infra tests: real Terraform, built-in resources only.

Each stack is one ``terraform_data`` resource whose ``input`` is its ``value`` variable joined
with what it reads from other stacks' remote state. ``triggers_replace = plantimestamp()``
replaces it on every apply, so its ``local-exec`` provisioner appends the stack's name to
``applies.log`` once per real apply: the log counts applies, whatever the orchestrator believes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

_STACK = """\
variable "value" {{
  type    = string
  default = "v1"
}}
{reads}
resource "terraform_data" "this" {{
  input            = join("+", [var.value{inputs}])
  triggers_replace = plantimestamp()
  provisioner "local-exec" {{
    command = "{pause}echo {name} >> ${{path.module}}/../applies.log"
  }}
}}

output "value" {{
  value = terraform_data.this.output
}}
{echoes}"""

# An output read straight from a source's state: it drifts when the source changes and this
# stack is not applied again, which is what a refresh-only plan reports.
_ECHO = """\
output "from_{source}" {{
  value = data.terraform_remote_state.{source}.outputs.value
}}
"""

_READ = """\
data "terraform_remote_state" "{source}" {{
  backend = "local"
  config = {{
    path = "../{source}/terraform.tfstate"
  }}
}}
"""


def write_repo(
    root: Path,
    stacks: Mapping[str, Sequence[str]],
    *,
    values: Mapping[str, str] | None = None,
    depends_on: Mapping[str, Sequence[str]] | None = None,
    auto_apply: Sequence[str] = (),
    global_outputs: Sequence[str] = (),
    policies: Sequence[str] = (),
    pause: float = 0.0,
    terraform: str = "embedded",
    parallelism: int = 2,
    echo_sources: bool = False,
) -> Path:
    """Write one folder per stack (``stacks`` maps a name to the stacks it reads) and the YAML."""
    root.mkdir(parents=True, exist_ok=True)
    for name, reads in stacks.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        (folder / "main.tf").write_text(
            _STACK.format(
                name=name,
                reads="".join(_READ.format(source=source) for source in reads),
                inputs="".join(
                    f", data.terraform_remote_state.{source}.outputs.value" for source in reads
                ),
                pause=f"sleep {pause}; " if pause else "",
                echoes="".join(_ECHO.format(source=s) for s in reads) if echo_sources else "",
            )
        )
    write_config(
        root,
        stacks,
        values=values,
        depends_on=depends_on,
        auto_apply=auto_apply,
        global_outputs=global_outputs,
        policies=policies,
        terraform=terraform,
        parallelism=parallelism,
    )
    return root / "reclaim-infra.yaml"


def write_config(
    root: Path,
    stacks: Mapping[str, Sequence[str]],
    *,
    values: Mapping[str, str] | None = None,
    depends_on: Mapping[str, Sequence[str]] | None = None,
    auto_apply: Sequence[str] = (),
    global_outputs: Sequence[str] = (),
    policies: Sequence[str] = (),
    terraform: str = "embedded",
    parallelism: int = 2,
) -> None:
    """(Re)write ``reclaim-infra.yaml``; JSON is YAML, so no YAML writer is needed."""
    document: dict[str, object] = {
        "terraform": terraform,
        "parallelism": parallelism,
        "stacks": {
            name: {
                "auto_apply": name in auto_apply,
                "depends_on": list((depends_on or {}).get(name, ())),
                "vars": {"value": (values or {}).get(name, "v1")},
            }
            for name in stacks
        },
    }
    if global_outputs:
        document["global_outputs"] = list(global_outputs)
    if policies:
        document["policies"] = list(policies)
    (root / "reclaim-infra.yaml").write_text(json.dumps(document, indent=2) + "\n")


def applies(root: Path) -> list[str]:
    """The stacks' names in the order Terraform really applied them."""
    log = root / "applies.log"
    return log.read_text().split() if log.exists() else []


def state_of(root: Path, stack: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((root / stack / "terraform.tfstate").read_text())
    return document
