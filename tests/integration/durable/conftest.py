"""A durable store on a fresh database, for each backend."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reclaim.durable import Store


@pytest.fixture
def store(engine: Engine) -> Store:
    store = Store(engine)
    store.ensure_schema()
    return store
