"""The exact LLM cache: one entry per prompt and model configuration."""

from __future__ import annotations

from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE
from typing_extensions import Unpack

from langchain_es_cache._async.llm import AsyncLLMCacheIndex, AsyncLLMOptions
from langchain_es_cache._common.documents import (
    is_expired,
    parse_generations,
)
from langchain_es_cache._common.failures import (
    ES_ERRORS,
)
from langchain_es_cache._common.keys import llm_key
from langchain_es_cache._common.mappings import LLM_CACHE_MAPPING, LOOKUP_FIELDS
from langchain_es_cache._common.usage import tokens_of
from langchain_es_cache._common.validation import (
    validate_refresh,
)
from langchain_es_cache._twins import AsyncBaseCache
from langchain_es_cache.types import Refresh


class AsyncElasticsearchCache(AsyncLLMCacheIndex, AsyncBaseCache):
    """LangChain LLM cache stored in Elasticsearch.

    One document per ``(prompt, llm_string)``, with the id given by
    `langchain_es_cache._common.keys.llm_key`. Hand it to ``set_llm_cache`` or to a
    model's ``cache=``. The async class serves async calls only; the sync
    class serves sync and async calls alike.
    """

    MAPPING = LLM_CACHE_MAPPING

    def __init__(
        self,
        index_name: str,
        *,
        refresh: Refresh = False,
        **options: Unpack[AsyncLLMOptions],
    ) -> None:
        """Validate the settings; no request is sent until first use.

        Args:
            index_name: Index or alias holding the cache; created on first write.
            refresh: Refresh after each write, clear and purge (`True`,
                ``"wait_for"``) so that searches of your own see them at once;
                lookups never need it.
            **options: What to store, `single_flight`, the connection and the
                options every class takes: see `AsyncLLMOptions`.
        """
        super().__init__(index_name, options)
        self._refresh = validate_refresh(refresh)

    def build_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        """Return the document that `aupdate` stores for these arguments."""
        return self._llm_document(prompt, llm_string, return_val)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Return the cached generations for `prompt` and `llm_string`, or `None`."""
        key = llm_key(prompt, llm_string, self._namespace)
        try:
            with self._gate("lookup", timed=True) as stopwatch:
                if self._flights is not None and self._is_alias is None:
                    # A miss claims the key, which needs the index prepared:
                    # prepared first, the claim follows the read at once,
                    # leaving an answer written meanwhile little time to
                    # come between them.
                    await self.is_alias()
                    stopwatch.restart()  # the index's preparation is no answer
                source = await self._realtime_get(key, LOOKUP_FIELDS)
        except ES_ERRORS as exc:
            self._outcomes.failed("lookup", exc)
            return None
        if source is not None and is_expired(source, self._ttl, self._clock()):
            source = None
        found = parse_generations(source, index=self._index_name, key=key)
        if found is None and self._flights is not None:
            return await self._coalesce(key)
        self._outcomes.count("misses" if found is None else "hits")
        if found is not None:
            self._outcomes.count("tokens_saved", tokens_of(found))
        return found

    async def aupdate(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> None:
        """Store `return_val` as the answer for `prompt` and `llm_string`."""
        document = self.build_document(prompt, llm_string, return_val)
        doc_id = llm_key(prompt, llm_string, self._namespace)
        await self._store_answer(doc_id, document, refresh=self._refresh)
