"""How many documents and bytes one request carries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

MAX_DOCS_PER_REQUEST = 500
"""Most documents one mget or bulk request carries."""


MAX_BYTES_PER_REQUEST = 10 * 1024 * 1024
"""Most bytes one bulk request carries."""


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield `items` in lists of at most `size`."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
