"""Document ids: the key scheme, stable across processes, machines and releases."""

from __future__ import annotations

import hashlib

from langchain_es_cache._common.validation import require_str


def _netstring(text: str) -> bytes:
    # surrogatepass keeps lone surrogates hashable and distinct instead of failing.
    data = text.encode("utf-8", "surrogatepass")
    return b"%d:%s," % (len(data), data)


def cache_key(*parts: str) -> str:
    """Return the document id for a cache entry identified by `parts`.

    Scheme (version 1, stable across processes, machines and releases): the
    SHA-256 hex digest of the ASCII tag ``lcesc1`` followed by each part as a
    netstring, ``<byte length>:<UTF-8 bytes>,`` (lone surrogates encoded with
    ``surrogatepass``). Length prefixes make the encoding unambiguous, so
    ``("ab", "c")`` and ``("a", "bc")`` never share a key.
    """
    digest = hashlib.sha256(b"lcesc1")
    for part in parts:
        digest.update(_netstring(part))
    return digest.hexdigest()


def llm_key(prompt: str, llm_string: str, namespace: str | None = None) -> str:
    """Return the document id of the LLM cache entry for `(prompt, llm_string)`.

    A namespace is a third, leading part, so no namespace and any namespace
    never share a key.
    """
    require_str("prompt", prompt)
    require_str("llm_string", llm_string)
    if namespace is None:
        return cache_key(prompt, llm_string)
    return cache_key(namespace, prompt, llm_string)


def llm_string_hash(llm_string: str) -> str:
    """The indexed stand-in for `llm_string`: filterable, and no parameter text."""
    return cache_key(llm_string)


def embedding_key(key: str, namespace: str | None) -> str:
    """Return the document id of the embeddings cache entry for `key`.

    `cache_key` over ``("embedding", namespace or "", key)``: parts are
    length-prefixed, so no namespace/key split is ambiguous, and since an empty
    namespace is refused (`validate_namespace`), "" can stand for "none".
    """
    return cache_key("embedding", namespace or "", key)
