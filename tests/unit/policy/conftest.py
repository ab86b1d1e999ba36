"""Shared fixtures of the policy tests: the fixture plans and the built-in pack."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from reclaim.policy import PolicySet, builtin_pack_path, load_policies

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
#: Secrets written in plain text in the fixtures, as Terraform writes them in 'variables'.
SECRETS = ("Sup3r-S3cret-Pa55", "Azur3-Adm1n-S3cret", "Gcp-Sql-Us3r-S3cret")


@pytest.fixture(scope="session")
def pack() -> list[PolicySet]:
    return load_policies([builtin_pack_path()])
