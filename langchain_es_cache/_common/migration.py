"""Re-keying langchain-elasticsearch's cache documents into ours: pure, no I/O.

langchain-elasticsearch keys an LLM entry by the MD5 of ``prompt + llm_string``
and an embeddings entry by the MD5 of ``(namespace or "") + key``; we key by
SHA-256 of an unambiguous encoding (`llm_key`, `embedding_key`).
An MD5 cannot be reversed, so an entry can only be re-keyed when it stored its
inputs; and since ``"ab" + "c"`` and ``"a" + "bc"`` share an MD5 input, the
stored inputs are accepted only when they give back the document's own id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any, Literal

from langchain_es_cache._common.documents import (
    build_embedding_document,
    build_llm_document,
    decode_vector,
    parse_generations,
    parse_timestamp,
    utc_now,
)
from langchain_es_cache._common.keys import embedding_key, llm_key
from langchain_es_cache._common.mappings import SEMANTIC_VECTOR_FIELD
from langchain_es_cache._common.validation import validate_metadata
from langchain_es_cache.errors import MigrationError

Kind = Literal["llm", "embeddings"]
KINDS: tuple[Kind, ...] = ("llm", "embeddings")

KIND_NAMES = {
    "llm": "LLM cache (ElasticsearchCache)",
    "embeddings": "embeddings cache (ElasticsearchEmbeddingsCache)",
}

OURS_FIELDS = ("llm_string_hash", "key_prefix", SEMANTIC_VECTOR_FIELD)
"""Fields only our documents have: their presence means SOURCE is already ours."""


def document_kind(source: Mapping[str, Any]) -> str:
    """``"llm"``, ``"embeddings"``, ``"ours"`` or ``"unknown"``, from a document."""
    if any(name in source for name in OURS_FIELDS):
        return "ours"
    if "llm_output" in source:
        return "llm"
    if "vector_dump" in source:
        return "embeddings"
    return "unknown"


def detect_kind(index: str, sources: Iterable[Mapping[str, Any]]) -> Kind | None:
    """Which cache wrote `sources` (a sample of `index`); `None` when there are none.

    Raises `MigrationError` when the documents are ours already, of both kinds,
    or of neither.
    """
    seen: dict[str, int] = {}
    for source in sources:
        kind = document_kind(source)
        seen[kind] = seen.get(kind, 0) + 1
    if not seen:
        return None
    if "ours" in seen:
        raise MigrationError(
            f"{index!r} holds documents written by langchain-es-cache, not by "
            "langchain-elasticsearch: there is nothing to re-key"
        )
    kinds = [kind for kind in KINDS if kind in seen]
    if not kinds:
        raise MigrationError(
            f"cannot tell which cache wrote {index!r}: none of its first "
            f"{sum(seen.values())} documents has llm_output (ElasticsearchCache) "
            "or vector_dump (ElasticsearchEmbeddingsCache)"
        )
    if len(kinds) > 1:
        raise MigrationError(
            f"{index!r} holds entries of both ElasticsearchCache and "
            "ElasticsearchEmbeddingsCache: choose one with kind= (--kind)"
        )
    return kinds[0]


def dest_problem(kind: Kind, dest: str, properties: Mapping[str, Any]) -> str | None:
    """Why an existing DEST with these mapped fields cannot take `kind`, or `None`.

    An index without mapped fields (just created, or by hand) takes anything.
    """
    if not properties:
        return None
    if SEMANTIC_VECTOR_FIELD in properties:
        return (
            f"{dest!r} is a semantic cache index: migrated entries have no "
            "embedding and would never be found there; migrate into an exact "
            "cache index"
        )
    own, other = (
        ("llm_string_hash", "vector_dump")
        if kind == "llm"
        else ("key_prefix", "llm_output")
    )
    if other in properties:
        return f"{dest!r} holds the other kind of cache, not an {KIND_NAMES[kind]}"
    if own not in properties:
        return (
            f"{dest!r} is not a langchain-es-cache index (its mapping has no "
            f"{own}): migrate into a new index or one of ours"
        )
    return None


def reference_llm_id(prompt: str, llm_string: str) -> str:
    """The id langchain-elasticsearch gives the LLM entry of this pair."""
    return hashlib.md5((prompt + llm_string).encode("utf-8")).hexdigest()


def reference_embedding_id(key: str, namespace: str | None) -> str:
    """The id langchain-elasticsearch gives the embeddings entry of this key."""
    return hashlib.md5(((namespace or "") + key).encode("utf-8")).hexdigest()


_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)\.(\d+)")


def read_time(value: object, zone: tzinfo | None) -> datetime | None:
    """A stored ``timestamp`` as an aware datetime, or `None` when unusable.

    langchain-elasticsearch wrote ``datetime.now().isoformat()``: the writer's
    local time without an offset. Such a naive time is read in `zone` (`None`:
    this machine's local time zone); a time with an offset keeps it. The result
    is cut to the millisecond, as our documents store it.
    """
    if not isinstance(value, str):
        return None
    # Python 3.10 reads only 3 or 6 digits of a second's fraction.
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), value, count=1)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = (
            parsed.astimezone(timezone.utc)
            if zone is None
            else parsed.replace(tzinfo=zone)
        )
    # Stored to the millisecond: compared with DEST's copies at that precision.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Entry:
    """One source document re-keyed: our id and document, and when it was written."""

    doc_id: str
    document: dict[str, Any]
    written: datetime | None


@dataclass(frozen=True)
class Skip:
    """A source document not copied, and why (a `MigrationReport.SKIP_REASONS` key)."""

    reason: str
    detail: str


Build = Callable[[dict[str, Any] | None, datetime], dict[str, Any]]
"""Our document of a re-keyed entry, from its metadata and write time."""


def convert(
    kind: Kind,
    hit: Mapping[str, Any],
    *,
    namespace: str | None,
    zone: tzinfo | None,
    index: str,
) -> Entry | Skip:
    """Re-key one scan hit of SOURCE into our document, or say why it is not."""
    source = hit.get("_source")
    if not isinstance(source, Mapping):
        return Skip("unreadable", "no _source")
    found = document_kind(source)
    if found != kind:
        return Skip("other_kind", f"a document of kind {found!r}")
    rekeyed = (
        _rekey_llm(hit, source, namespace=namespace, index=index)
        if kind == "llm"
        else _rekey_embedding(hit, source)
    )
    if isinstance(rekeyed, Skip):
        return rekeyed
    doc_id, build = rekeyed
    try:
        metadata = validate_metadata(source.get("metadata"))
    except ValueError as exc:
        return Skip("unreadable", str(exc))
    written = read_time(source.get("timestamp"), zone)
    document = build(metadata, written or utc_now())
    # The builders stamp the time they are given; a source without a usable
    # time stays without one (a lookup with a ttl then treats it as expired).
    if written is None:
        del document["timestamp"]
    return Entry(doc_id, document, written)


def _rekey_llm(
    hit: Mapping[str, Any],
    source: Mapping[str, Any],
    *,
    namespace: str | None,
    index: str,
) -> tuple[str, Build] | Skip:
    prompt, llm_string = source.get("llm_input"), source.get("llm_params")
    if not isinstance(prompt, str) or not isinstance(llm_string, str):
        missing = [
            name
            for name, value in (("llm_input", prompt), ("llm_params", llm_string))
            if not isinstance(value, str)
        ]
        return Skip("no_input", f"no {' or '.join(missing)}")
    if reference_llm_id(prompt, llm_string) != hit.get("_id"):
        return Skip("mismatched", "md5(llm_input + llm_params) is not the id")
    generations = parse_generations(source, index=index, key=str(hit["_id"]))
    if generations is None:
        return Skip("unreadable", "llm_output cannot be read as generations")

    def build(metadata: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        document = build_llm_document(
            prompt,
            llm_string,
            generations,
            store_input=True,
            store_input_params=True,
            metadata=metadata,
            now=now,
            namespace=namespace,
        )
        # The answer is kept as it was stored, not as this langchain-core
        # would serialize it again.
        document["llm_output"] = list(source["llm_output"])
        return document

    return llm_key(prompt, llm_string, namespace), build


def _rekey_embedding(
    hit: Mapping[str, Any], source: Mapping[str, Any]
) -> tuple[str, Build] | Skip:
    key = source.get("text_input")
    if not isinstance(key, str):
        return Skip("no_input", "no text_input")
    stored_namespace = source.get("namespace")
    if stored_namespace is not None and not isinstance(stored_namespace, str):
        return Skip("unreadable", "namespace is not a string")
    # langchain-elasticsearch treats "" as no namespace, as we do with None.
    namespace = stored_namespace or None
    if reference_embedding_id(key, namespace) != hit.get("_id"):
        return Skip("mismatched", "md5(namespace + text_input) is not the id")
    raw = source.get("vector_dump")
    try:
        if not isinstance(raw, str):
            raise ValueError("vector_dump is not a string")
        value = decode_vector(raw)
    except ValueError as exc:
        return Skip("unreadable", f"vector_dump: {exc}")

    def build(metadata: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        return build_embedding_document(
            key,
            value,
            store_input=True,
            metadata=metadata,
            namespace=namespace,
            now=now,
        )

    return embedding_key(key, namespace), build


def newest_entries(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per id, the newest; SOURCE behind an alias may hold copies."""
    best: dict[str, Entry] = {}
    for entry in entries:
        kept = best.get(entry.doc_id)
        if kept is None or _is_newer(entry.written, kept.written):
            best[entry.doc_id] = entry
    return list(best.values())


def _is_newer(candidate: datetime | None, current: datetime | None) -> bool:
    """Tell whether `candidate` replaces `current`; an unknown time never wins."""
    if candidate is None:
        return False
    return current is None or candidate > current


Action = Literal["create", "update", "unchanged"]


def plan(entry: Entry, existing: Mapping[str, Any] | None) -> Action:
    """What to do with `entry` given DEST's current copy (`None`: absent).

    The newer copy wins, so a second run changes nothing, and an entry our
    cache has rewritten since the first run is never replaced by an older one.
    """
    if existing is None:
        return "create"
    if _is_newer(entry.written, parse_timestamp(existing)):
        return "update"
    return "unchanged"
