"""Fixtures of the cache tests, one per client kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from utils import es_server


@pytest.fixture
async def async_client(
    es_conn: es_server.Connection,
) -> AsyncIterator[AsyncElasticsearch]:
    """A client of the test's own, authenticated with the run's API key."""
    client = AsyncElasticsearch(es_conn.url, **es_conn.client_auth())
    yield client
    await client.close()
