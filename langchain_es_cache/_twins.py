"""What truly differs between the async source and its generated sync twin.

The async source imports the ``Async*`` names; the code generator strips the
prefix, so the sync twin imports the plain names from here.
"""

from __future__ import annotations

from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache

from langchain_es_cache._common import sync_use_error

__all__ = ["AsyncBaseCache", "BaseCache"]


class AsyncBaseCache(BaseCache):
    """A LangChain cache that only works from async code.

    LangChain calls the sync methods from ``invoke``; instead of its bare
    ``NotImplementedError`` they raise a `TypeError` that names the sync class.
    """

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        raise sync_use_error(type(self).__name__, "lookup")

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        raise sync_use_error(type(self).__name__, "update")

    def clear(self, **kwargs: Any) -> None:
        raise sync_use_error(type(self).__name__, "clear")
