# Generated from langchain_es_cache/_async/cache.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The LLM cache, written once as async code; the sync twin is generated from it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch, NotFoundError
from elasticsearch.helpers import bulk, scan
from langchain_core.caches import RETURN_VAL_TYPE

from langchain_es_cache import _common
from langchain_es_cache._common import Clock, Refresh
from langchain_es_cache._twins import BaseCache

logger = logging.getLogger("langchain_es_cache")


class ElasticsearchCache(BaseCache):
    """LangChain LLM cache stored in Elasticsearch, for async code.

    One document per ``(prompt, llm_string)``, with the id given by
    `langchain_es_cache._common.llm_key`. Hand it to ``set_llm_cache`` or to a
    model's ``cache=``; for sync or mixed code use ``ElasticsearchCache``.
    """

    def __init__(
        self,
        index_name: str,
        *,
        store_input: bool = True,
        store_input_params: bool = True,
        metadata: dict[str, Any] | None = None,
        client: Elasticsearch | None = None,
        es_url: str | None = None,
        es_cloud_id: str | None = None,
        es_user: str | None = None,
        es_api_key: str | None = None,
        es_password: str | None = None,
        refresh: Refresh = False,
        clock: Clock = _common.utc_now,
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            store_input: Store the prompt in ``llm_input``.
            store_input_params: Store the model's parameters in ``llm_params``.
            metadata: JSON-serializable dict stored with every entry.
            client: A client of your own; never closed or changed by the cache.
            es_url: URL of the cluster, when the cache creates its own client.
            es_cloud_id: Elastic Cloud id, instead of `es_url`.
            es_user: User for basic authentication, with `es_password`.
            es_api_key: Encoded API key, instead of user and password.
            es_password: Password for `es_user`.
            refresh: Refresh after each write (`True`, ``"wait_for"``) so that
                searches of your own see it; lookups never need it.
            clock: Returns the current aware datetime; for tests.
        """
        self._index_name = _common.validate_index_name(index_name)
        self._store_input = _common.validate_flag("store_input", store_input)
        self._store_input_params = _common.validate_flag(
            "store_input_params", store_input_params
        )
        self._metadata = _common.validate_metadata(metadata)
        self._refresh = _common.validate_refresh(refresh)
        self._clock = clock
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
        self._multi_index = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_name={self._index_name!r})"

    @property
    def mapping(self) -> dict[str, Any]:
        """The index mapping the cache creates (or adds to an alias's indices)."""
        return {"mappings": _common.LLM_CACHE_MAPPING}

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
            indices.create(index=self._index_name, mappings=_common.LLM_CACHE_MAPPING)
            logger.debug("created cache index %s", self._index_name)
        except BadRequestError as exc:
            # Another task, thread or process created it first: fine.
            if not _common.is_error_type(exc, "resource_already_exists_exception"):
                raise
            self._put_mapping()
        return False

    def _put_mapping(self) -> None:
        try:
            self._client.indices.put_mapping(
                index=self._index_name, **_common.LLM_CACHE_MAPPING
            )
        except BadRequestError as exc:
            if not _common.is_error_type(exc, "illegal_argument_exception"):
                raise
            raise _common.mapping_conflict(self._index_name, exc) from exc

    def build_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        """Return the document that `aupdate` stores for these arguments."""
        return _common.build_llm_document(
            prompt,
            llm_string,
            return_val,
            store_input=self._store_input,
            store_input_params=self._store_input_params,
            metadata=self._metadata,
            now=self._clock(),
        )

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the cached generations for `prompt` and `llm_string`, or `None`."""
        key = _common.llm_key(prompt, llm_string)
        if not self._multi_index:
            try:
                doc = self._client.get(
                    index=self._index_name,
                    id=key,
                    source_includes=_common.LOOKUP_FIELDS,
                )
            except NotFoundError:
                return None
            except BadRequestError as exc:
                if not _common.is_multi_index_error(exc):
                    raise
                # A get cannot span the indices of an alias: from now on read
                # them all and keep the newest copy.
                self._multi_index = True
            else:
                return _common.parse_generations(
                    doc.get("_source"), index=self._index_name, key=key
                )
        source = _common.newest_source(self._get_everywhere(key))
        return _common.parse_generations(source, index=self._index_name, key=key)

    def _get_everywhere(self, key: str) -> list[dict[str, Any]]:
        """Realtime-read `key` from every index behind the alias."""
        try:
            aliases = self._client.indices.get_alias(name=self._index_name)
        except NotFoundError:
            return []
        response = self._client.mget(
            docs=[{"_index": index, "_id": key} for index in sorted(aliases)],
            source_includes=_common.LOOKUP_FIELDS,
        )
        docs: list[dict[str, Any]] = response["docs"]
        return docs

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`."""
        document = self.build_document(prompt, llm_string, return_val)
        alias = self.is_alias()
        self._client.index(
            index=self._index_name,
            id=_common.llm_key(prompt, llm_string),
            document=document,
            # Through an alias, never let a write auto-create an index named
            # like the alias.
            require_alias=alias,
            refresh=self._refresh,
        )

    def clear(self, **kwargs: Any) -> None:
        """Delete every entry of the cache, in every index behind an alias."""
        try:
            # A scan only sees refreshed documents: make recent writes visible.
            self._client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return
        deleted, _ = bulk(
            self._client,
            self._delete_actions(),
            # A document deleted or rewritten by a racing writer is not a failure.
            ignore_status=(404,),
            stats_only=True,
        )
        logger.info("cleared %d entries from %s", deleted, self._index_name)

    def _delete_actions(self) -> Iterator[dict[str, Any]]:
        for hit in scan(
            self._client,
            index=self._index_name,
            query={"query": {"match_all": {}}},
            _source=False,
            size=1000,
        ):
            yield {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}

    def close(self) -> None:
        """Close the client if the cache created it; a client passed in stays open."""
        if self._owned_client is not None:
            self._owned_client.close()

    def __enter__(self) -> ElasticsearchCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
