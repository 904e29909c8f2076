"""Requests carry our User-Agent, whoever made the client (recorded by a stub server).

A stand-in for Elasticsearch is right here: what is checked is the request's
shape, which the real node does not report back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache, __version__


class Recorder(BaseHTTPRequestHandler):
    """Answers every request as an mget that found nothing."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        Recorder.seen.append(dict(self.headers.items()))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"docs": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_url() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def user_agents() -> list[str]:
    return [
        value
        for h in Recorder.seen
        for key, value in h.items()
        if key.lower() == "user-agent"
    ]


def test_sync_cache_sends_its_user_agent(stub_url: str) -> None:
    with ElasticsearchCache("cache", es_url=stub_url) as cache:
        assert cache.lookup("p", "l") is None
    client = Elasticsearch(stub_url)
    before = dict(client._headers)
    assert ElasticsearchCache("cache", client=client).lookup("p", "l") is None
    assert dict(client._headers) == before  # the caller's client is unchanged
    assert user_agents() == [f"langchain-es-cache/{__version__}"] * 2


async def test_async_cache_sends_its_user_agent(stub_url: str) -> None:
    async with AsyncElasticsearchCache("cache", es_url=stub_url) as cache:
        assert await cache.alookup("p", "l") is None
    client = AsyncElasticsearch(stub_url)
    assert (
        await AsyncElasticsearchCache("cache", client=client).alookup("p", "l") is None
    )
    await client.close()
    assert user_agents() == [f"langchain-es-cache/{__version__}"] * 2
