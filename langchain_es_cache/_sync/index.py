# Generated from langchain_es_cache/_async/index.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The client and the index behind every cache class: written once, async."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, ClassVar

from elasticsearch import BadRequestError, Elasticsearch
from typing_extensions import Self

from langchain_es_cache import _common

logger = logging.getLogger("langchain_es_cache")


class CacheIndex:
    """Owns the connection and prepares the index; subclasses add the cache API.

    A client the class creates from credentials is closed by `aclose` and
    ``async with``; a client passed in is used through ``options()`` (so never
    changed) and never closed.
    """

    MAPPING: ClassVar[dict[str, Any]]
    """The ``mappings`` body of the index: set by each cache class."""

    def __init__(
        self,
        index_name: str,
        *,
        client: Elasticsearch | None,
        es_url: str | None,
        es_cloud_id: str | None,
        es_user: str | None,
        es_api_key: str | None,
        es_password: str | None,
        on_error: _common.OnError,
    ) -> None:
        self._index_name = _common.validate_index_name(index_name)
        self._outcomes = _common.Outcomes(
            self._index_name, _common.validate_on_error(on_error)
        )
        settings = _common.client_settings(
            has_client=client is not None,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
        )
        if client is None:
            self._owned_client: Elasticsearch | None = Elasticsearch(**settings or {})
            self._client = self._owned_client
        else:
            if not isinstance(client, Elasticsearch):
                raise _common.wrong_client_error(Elasticsearch, client)
            self._owned_client = None
            # options() returns a new client sharing the transport: the
            # caller's object is left as it was.
            self._client = client.options(headers={"user-agent": _common.USER_AGENT})
        self._is_alias: bool | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_name={self._index_name!r})"

    def stats(self) -> _common.CacheStats:
        """Hits, misses, writes and errors since construction."""
        return self._outcomes.snapshot()

    @property
    def mapping(self) -> dict[str, Any]:
        """The index mapping the cache creates (or adds to an alias's indices)."""
        return {"mappings": self.MAPPING}

    def is_alias(self) -> bool:
        """Make sure the index exists with the cache's mapping; tell if it is an alias.

        The first call creates the index, or puts the mapping on an existing index
        or on every index behind an alias; the answer is then remembered.
        """
        if self._is_alias is None:
            self._is_alias = self._prepare_index()
        return self._is_alias

    def _prepare_index(self) -> bool:
        indices = self._client.indices
        if indices.exists_alias(name=self._index_name):
            self._put_mapping()
            return True
        try:
            indices.create(index=self._index_name, mappings=self.MAPPING)
            logger.debug("created cache index %s", self._index_name)
        except BadRequestError as exc:
            # Another task, thread or process created it first: fine.
            if not _common.is_error_type(exc, "resource_already_exists_exception"):
                raise
            self._put_mapping()
        return False

    def _put_mapping(self) -> None:
        try:
            self._client.indices.put_mapping(index=self._index_name, **self.MAPPING)
        except BadRequestError as exc:
            if not _common.is_error_type(exc, "illegal_argument_exception"):
                raise
            raise _common.mapping_conflict(self._index_name, exc) from exc

    def close(self) -> None:
        """Close the client if the cache created it; a client passed in stays open."""
        if self._owned_client is not None:
            self._owned_client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
