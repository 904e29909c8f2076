"""Session-wide Elasticsearch node and per-test index names, shared by all tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from utils import es_server

SERVER_FIXTURES = {"es_conn", "spare_node"}
"""A test using one of these needs an Elasticsearch node (and Java and Maven to
start one): it is an integration test, as are modules marked so (real sockets
and timeouts); every other test is in the fast tier."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def es_conn() -> Iterator[es_server.Connection]:
    """The cluster under test: ES_URL's if set, else a node started for this run."""
    with es_server.cluster() as connection:
        yield connection


@pytest.fixture(scope="session")
def spare_node() -> Iterator[es_server.ServerInfo]:
    """A second node of our own, that tests may stop and start again."""
    if es_server.from_env() is not None:
        pytest.skip("stopping nodes needs the project's own server, not ES_URL")
    with es_server.running(name="es-spare") as info:
        yield info


@pytest.fixture(scope="session")
def api_key_settings(es_conn: es_server.Connection) -> dict[str, Any]:
    """Cache constructor arguments authenticating with an API key."""
    if es_conn.api_key is None:
        pytest.skip("the cluster in ES_URL was given without ES_API_KEY")
    return {"es_url": es_conn.url, "es_api_key": es_conn.api_key}


@pytest.fixture(scope="session")
def basic_settings(es_conn: es_server.Connection) -> dict[str, Any]:
    """Cache constructor arguments authenticating with user and password."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("the cluster in ES_URL was given without ES_USER/ES_PASSWORD")
    return {
        "es_url": es_conn.url,
        "es_user": es_conn.user,
        "es_password": es_conn.password,
    }


@pytest.fixture(scope="session")
def admin(es_conn: es_server.Connection) -> Iterator[Elasticsearch]:
    """A sync client for setting up and inspecting what the tests create."""
    client = Elasticsearch(es_conn.url, **es_conn.client_auth())
    yield client
    client.close()


@pytest.fixture
def root(es_conn: es_server.Connection) -> Iterator[Elasticsearch]:
    """The superuser by basic auth: keys with limits must be created so."""
    if es_conn.user is None or es_conn.password is None:
        pytest.skip("creating limited API keys needs ES_USER/ES_PASSWORD")
    with Elasticsearch(
        es_conn.url, basic_auth=(es_conn.user, es_conn.password)
    ) as client:
        yield client


@pytest.fixture
def index_name(admin: Elasticsearch) -> Iterator[str]:
    """A fresh index name; every index and alias starting with it is removed after."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    # Explicit names, so that clusters refusing wildcard deletes work too.
    existing = admin.indices.get(index=f"{name}*", expand_wildcards="all")
    for index in existing:
        admin.indices.delete(index=index, ignore_unavailable=True)
