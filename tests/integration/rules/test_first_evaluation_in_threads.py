"""Threads that evaluate for the first time at once (the infra orchestrator's policy checks)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# In a fresh interpreter: the evaluator is imported on first use, so the race is only there once.
SCRIPT = textwrap.dedent(
    """
    import threading
    from reclaim.rules import load_rules_text

    ruleset = load_rules_text("rules:\\n  - id: big\\n    condition: cost > 10\\n", "race.yaml")
    barrier = threading.Barrier(8)
    errors = []

    def first_evaluation():
        barrier.wait()
        try:
            ruleset.evaluate({"cost": 20})
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=first_evaluation) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("\\n".join(errors))
    """
)


def test_eight_threads_evaluating_for_the_first_time_all_get_an_answer() -> None:
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "", done.stdout  # was: "partially initialized module"
