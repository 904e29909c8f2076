"""Client 9 against an Elasticsearch 8 server fails with an error that says why.

The live test runs only in that combination (``nox -s compat`` has a case for
it); the rest of the suite cannot run there, as client 9 cannot talk to 8.x.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import elasticsearch
import pytest
from elasticsearch import BadRequestError
from langchain_core.outputs import Generation

from langchain_es_cache import ElasticsearchCache
from langchain_es_cache._common.failures import client_server_mismatch
from utils import es_server

CLIENT_9_SERVER_8 = elasticsearch.__version__[0] == 9 and (
    es_server.resolve_version().startswith("8.")
)

REASON = (
    "Accept version must be either version 8 or 7, but found 9. "
    "Accept=application/vnd.elasticsearch+json; compatible-with=9"
)


class FakeApiError(Exception):
    def __init__(self, body: object) -> None:
        self.body = body


def test_mismatch_is_recognized_from_the_servers_answer() -> None:
    body = {
        "error": {
            "type": "media_type_header_exception",
            "reason": "Invalid media-type value on headers [Accept, Content-Type]",
            "caused_by": {"type": "status_exception", "reason": REASON},
        },
        "status": 400,
    }
    error = client_server_mismatch(FakeApiError(body))
    assert error is not None
    assert "client 9 cannot talk to Elasticsearch 8.x" in str(error)
    assert "elasticsearch>=8,<9" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"error": "text"},
        {"error": {"type": "illegal_argument_exception", "reason": REASON}},
        {"error": {"type": "media_type_header_exception", "caused_by": {}}},
    ],
)
def test_other_errors_are_not_a_mismatch(body: object) -> None:
    assert client_server_mismatch(FakeApiError(body)) is None


@pytest.mark.skipif(
    not CLIENT_9_SERVER_8, reason="only with client 9 against an 8.x server"
)
def test_client_9_against_server_8_says_so(basic_settings: dict[str, Any]) -> None:
    # Nothing can be created, so there is nothing to clean up either.
    for on_error in ("raise", "warn"):  # a setup mistake: raised either way
        cache = ElasticsearchCache(
            "test-client-mismatch", on_error=on_error, **basic_settings
        )
        for call in (
            partial(cache.lookup, "p", "l"),
            partial(cache.update, "p", "l", [Generation(text="x")]),
            cache.clear,
        ):
            with pytest.raises(RuntimeError, match="client 9 cannot talk") as info:
                call()
            assert isinstance(info.value.__cause__, BadRequestError)
        cache.close()
