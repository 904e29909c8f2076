"""The LLM cache, written once as async code; the sync twin is generated from it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError
from elasticsearch.helpers import async_bulk, async_scan
from langchain_core.caches import RETURN_VAL_TYPE

from langchain_es_cache import _common
from langchain_es_cache._async.index import AsyncCacheIndex
from langchain_es_cache._common import Clock, Refresh
from langchain_es_cache._twins import AsyncBaseCache

logger = logging.getLogger("langchain_es_cache")


class AsyncElasticsearchCache(AsyncCacheIndex, AsyncBaseCache):
    """LangChain LLM cache stored in Elasticsearch.

    One document per ``(prompt, llm_string)``, with the id given by
    `langchain_es_cache._common.llm_key`. Hand it to ``set_llm_cache`` or to a
    model's ``cache=``. ``AsyncElasticsearchCache`` serves async calls only;
    ``ElasticsearchCache`` serves sync and async calls alike.
    """

    MAPPING = _common.LLM_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        store_input: bool = True,
        store_input_params: bool = True,
        metadata: dict[str, Any] | None = None,
        client: AsyncElasticsearch | None = None,
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
        super().__init__(
            index_name,
            client=client,
            es_url=es_url,
            es_cloud_id=es_cloud_id,
            es_user=es_user,
            es_api_key=es_api_key,
            es_password=es_password,
        )
        self._store_input = _common.validate_flag("store_input", store_input)
        self._store_input_params = _common.validate_flag(
            "store_input_params", store_input_params
        )
        self._metadata = _common.validate_metadata(metadata)
        self._refresh = _common.validate_refresh(refresh)
        self._clock = clock
        self._multi_index = False

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

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the cached generations for `prompt` and `llm_string`, or `None`."""
        key = _common.llm_key(prompt, llm_string)
        if not self._multi_index:
            try:
                doc = await self._client.get(
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
        source = _common.newest_source(await self._get_everywhere(key))
        return _common.parse_generations(source, index=self._index_name, key=key)

    async def _get_everywhere(self, key: str) -> list[dict[str, Any]]:
        """Realtime-read `key` from every index behind the alias."""
        try:
            aliases = await self._client.indices.get_alias(name=self._index_name)
        except NotFoundError:
            return []
        response = await self._client.mget(
            docs=[{"_index": index, "_id": key} for index in sorted(aliases)],
            source_includes=_common.LOOKUP_FIELDS,
        )
        docs: list[dict[str, Any]] = response["docs"]
        return docs

    async def aupdate(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`."""
        document = self.build_document(prompt, llm_string, return_val)
        alias = await self.is_alias()
        await self._client.index(
            index=self._index_name,
            id=_common.llm_key(prompt, llm_string),
            document=document,
            # Through an alias, never let a write auto-create an index named
            # like the alias.
            require_alias=alias,
            refresh=self._refresh,
        )

    async def aclear(self, **kwargs: Any) -> None:
        """Delete every entry of the cache, in every index behind an alias."""
        try:
            # A scan only sees refreshed documents: make recent writes visible.
            await self._client.indices.refresh(index=self._index_name)
        except NotFoundError:
            return
        deleted, _ = await async_bulk(
            self._client,
            self._delete_actions(),
            # A document deleted or rewritten by a racing writer is not a failure.
            ignore_status=(404,),
            stats_only=True,
        )
        logger.info("cleared %d entries from %s", deleted, self._index_name)

    async def _delete_actions(self) -> AsyncIterator[dict[str, Any]]:
        async for hit in async_scan(
            self._client,
            index=self._index_name,
            query={"query": {"match_all": {}}},
            _source=False,
            size=1000,
        ):
            yield {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}
