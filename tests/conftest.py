"""Fixtures shared by every test: a fresh database on each backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings
from sqlalchemy.engine import Engine

from reclaim.database import create_engine

# Property tests run derandomized (a seed derived from each test) in `make test`, so a lucky new
# example cannot fail a submission; `make fuzz` loads the "fuzz" profile: random seeds, and many
# more examples through RECLAIM_FUZZ_SCALE (read by the property tests themselves).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("RECLAIM_HYPOTHESIS_PROFILE", "ci"))


def _without_local_constants() -> None:
    """Derandomized examples depend on the test alone, not on which modules are loaded.

    Hypothesis also draws values from a pool of constants it reads in the source of every
    "local" module loaded so far: ours, imported lazily or not depending on which test files
    run, and any module a test imports from a temporary folder. So the same derandomized test
    generated other examples in another selection of test files (test_numbers_agree did). The
    pool is Hypothesis-internal, without a setting; an attribute it no longer has fails here
    (and test_property_settings) loudly rather than silently bringing the randomness back.
    """
    from hypothesis.internal.conjecture import providers

    no_constants = providers.Constants()
    assert callable(providers._get_local_constants)
    providers._get_local_constants = lambda: no_constants


if settings.get_current_profile_name() == "ci":
    _without_local_constants()

POSTGRES_URL_ENV = "RECLAIM_TEST_POSTGRES_URL"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a store test runs on; PostgreSQL skips unless its URL variable is set."""
    name: str = request.param
    if name == "postgresql" and postgres_url() is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_URL_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return name


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A URL (and PostgreSQL schema) for an empty database of its own; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'reclaim.db'}", None
        return
    url = postgres_url()
    assert url is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: tuple[str, str | None]) -> Iterator[Engine]:
    """An engine on a fresh, empty database, for each backend."""
    url, schema = database_url
    engine = create_engine(url, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def shared_data() -> Path:
    """The reference data beside the project, which a user's fresh clone does not have."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data folder {SHARED_DATA} is absent (only present beside the dev checkout)"
        )
    return SHARED_DATA
