# Generated from tests/_async/conftest.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Fixtures of the cache tests, one per client kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from utils import es_server


@pytest.fixture
def client(
    es_conn: es_server.Connection,
) -> Iterator[Elasticsearch]:
    """A client of the test's own, authenticated with the run's API key."""
    client = Elasticsearch(es_conn.url, **es_conn.client_auth())
    yield client
    client.close()
