"""``reclaim jira-sim serve`` and ``act`` as a user runs them: separate processes, a real port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from reclaim.tickets import IssueDraft, JiraCredentials, connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.timeout(300)
def test_serve_then_act(tmp_path: object) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_JIRA")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reclaim",
            "jira-sim",
            "serve",
            "--port",
            str(port),
            "--rate-limit",
            "500",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/_sim/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        with connect(
            JiraCredentials.cloud(url, "bot@example.com", "x"), requests_per_second=None
        ) as jira:
            jira.create_issues([IssueDraft("OPS", f"r{n}", labels=("reclaim",)) for n in range(40)])
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reclaim",
                "jira-sim",
                "act",
                "--url",
                url,
                "--seed",
                "3",
                "--done",
                "0.5",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "actions:" in done.stdout
        with connect(
            JiraCredentials.cloud(url, "bot@example.com", "x"), requests_per_second=None
        ) as jira:
            moved = list(jira.search_all("labels = reclaim AND statusCategory != new"))
        assert moved
        assert len(moved) < 40
    finally:
        server.terminate()
        server.wait(timeout=10)
        assert server.stdout is not None
        assert server.stderr is not None
        server.stdout.close()
        server.stderr.close()
