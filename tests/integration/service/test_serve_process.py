"""``reclaim serve`` as an operator runs it: a subprocess on a free port, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli_url(url: str, schema: str | None) -> str:
    return url if not schema else f"{url}?options={quote(f'-csearch_path={schema}')}"


def _reclaim(url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", url, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


@pytest.mark.timeout(300)
def test_serve_answers_probes_needs_a_token_and_stops_on_sigterm(
    database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    url = _cli_url(*database_url)
    _reclaim(url, "db", "upgrade")
    token = _reclaim(url, "tokens", "create", "ci").strip()
    assert token.startswith("rct_")
    port = _free_port()
    errors = tmp_path / "serve.err"
    with open(errors, "wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reclaim",
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--schedule-interval",
                "0.5",
            ],
            stderr=sink,
            env={**os.environ, "RECLAIM_JIRA_WEBHOOK_SECRET": "s3cret"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, errors.read_text()
            try:
                health = httpx.get(f"{base}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, errors.read_text()
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "reclaim_database_up 1.0" in metrics.text
        refused = httpx.get(f"{base}/api/v1/recommendations")
        assert refused.status_code == 401
        allowed = httpx.get(
            f"{base}/api/v1/recommendations", headers={"Authorization": f"Bearer {token}"}
        )
        assert allowed.json() == {"items": [], "next_cursor": None}
        # The secret came from the environment and is never printed.
        assert "s3cret" not in errors.read_text()
        assert "webhook on" in errors.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, errors.read_text()
    assert "Finished server process" in errors.read_text()


def test_tokens_cli_lists_revokes_and_hashes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    _reclaim(url, "db", "upgrade")
    token = _reclaim(url, "tokens", "create", "grafana").strip()
    listed = _reclaim(url, "tokens", "list")
    assert "grafana" in listed
    assert token not in listed
    _reclaim(url, "tokens", "revoke", "grafana")
    again = subprocess.run(
        [sys.executable, "-m", "reclaim", "--db", url, "tokens", "revoke", "grafana"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2
    assert "no live token is named 'grafana'" in again.stderr
    made, hashed = _reclaim(url, "tokens", "hash").split()
    from reclaim.service import hash_token

    assert hashed == hash_token(made)
