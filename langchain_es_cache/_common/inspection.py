"""What the command line asks a cache index and how it reads the answers: no I/O."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_es_cache._common.breaker import PRIVILEGES, is_required
from langchain_es_cache._common.documents import format_time
from langchain_es_cache._common.mappings import SEMANTIC_VECTOR_FIELD

MODEL_KEYS = ("model_name", "model", "model_id", "deployment_name")
"""Where LangChain models keep the model's name among their parameters."""

_PAIR = re.compile(r"\('(?P<key>[A-Za-z_]+)', '(?P<value>[^'\\]*)'\)")
"""A ``('key', 'text')`` pair in the ``str(sorted(params.items()))`` that
LangChain makes of a model's parameters (a repr, not always a literal)."""

MODEL_NAME_CHARS = 100_000
"""Longest ``llm_params`` read for a model's name; longer ones are not parsed."""


def model_name(llm_string: object) -> str | None:
    """The model's class or type and name, read from a stored ``llm_params``.

    LangChain's ``llm_string`` is either the model's serialized JSON followed by
    ``---`` and its call parameters (models LangChain can serialize), or the
    repr of its sorted parameters. `None` when neither names a model.
    """
    if not isinstance(llm_string, str) or len(llm_string) > MODEL_NAME_CHARS:
        return None
    if llm_string.startswith("{"):
        try:
            data, end = json.JSONDecoder().raw_decode(llm_string)
        except (ValueError, RecursionError):
            data, end = None, 0
        if isinstance(data, dict) and llm_string.startswith("---", end):
            ids, kwargs = data.get("id"), data.get("kwargs")
            kind = ids[-1] if isinstance(ids, list) and ids else None
            name = _first_name(kwargs if isinstance(kwargs, dict) else {})
            return " ".join(str(part) for part in (kind, name) if part) or None
    pairs = {m["key"]: m["value"] for m in _PAIR.finditer(llm_string)}
    parts = [pairs.get("_type"), _first_name(pairs)]
    return " ".join(part for part in parts if part) or None


def _first_name(params: Mapping[str, Any]) -> str | None:
    for key in MODEL_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def index_kind(properties: Mapping[str, Any]) -> str:
    """What wrote an index, from the fields its mapping has."""
    if SEMANTIC_VECTOR_FIELD in properties:
        return "semantic LLM cache"
    if "llm_string_hash" in properties:
        return "LLM cache"
    if "key_prefix" in properties:
        return "embeddings cache"
    if "graph_namespace_id" in properties:
        return "LangGraph node cache"
    if "llm_output" in properties:
        return "langchain-elasticsearch LLM cache"
    if "vector_dump" in properties:
        return "langchain-elasticsearch embeddings cache"
    return "unknown"


def merged_properties(mappings: Mapping[str, Any]) -> dict[str, Any]:
    """The fields mapped in any index of a ``get_mapping`` answer (an alias's)."""
    merged: dict[str, Any] = {}
    for body in mappings.values():
        properties = body.get("mappings", {}).get("properties", {})
        if isinstance(properties, dict):
            merged.update(properties)
    return merged


def stats_aggregations(top: int) -> dict[str, Any]:
    """Aggregations for `IndexStats`: the `top` namespaces and configurations."""
    return {
        "oldest": {"min": {"field": "timestamp"}},
        "newest": {"max": {"field": "timestamp"}},
        "no_namespace": {
            "missing": {"field": "namespace"},
            "aggs": {"newest": {"max": {"field": "timestamp"}}},
        },
        "namespaces": {
            "terms": {"field": "namespace", "size": top},
            "aggs": {"newest": {"max": {"field": "timestamp"}}},
        },
        "configurations": {
            "terms": {"field": "llm_string_hash", "size": top},
            "aggs": {
                "newest": {"max": {"field": "timestamp"}},
                "sample": {"top_hits": {"size": 1, "_source": ["llm_params"]}},
            },
        },
        "configuration_count": {"cardinality": {"field": "llm_string_hash"}},
    }


@dataclass(frozen=True)
class Group:
    """Entries sharing a namespace or a model configuration."""

    key: str | None
    entries: int
    newest: str | None
    model: str | None = None


@dataclass(frozen=True)
class IndexStats:
    """What an index holds: entries, size, ages, namespaces, model configurations.

    ``namespaces`` and ``configurations`` list the largest `top` groups; the
    ``*_other`` counts are the entries in the groups not listed. ``key`` of a
    configuration is its ``llm_string_hash``; ``model`` is read from a stored
    ``llm_params`` where there is one. ``size_bytes`` is `None` without the
    ``monitor`` privilege. Times are UTC ISO-8601. ``claims`` counts
    `single_flight`'s claims, which are not entries.
    """

    index: str
    kind: str
    entries: int
    size_bytes: int | None
    oldest: str | None
    newest: str | None
    namespaces: list[Group] = field(default_factory=list)
    namespaces_other: int = 0
    configurations: list[Group] = field(default_factory=list)
    configurations_other: int = 0
    configuration_count: int = 0
    claims: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _time(agg: Mapping[str, Any] | None) -> str | None:
    """A min/max aggregation's value as UTC ISO-8601 to the millisecond."""
    value = agg.get("value") if agg else None
    if not isinstance(value, (int, float)):
        return None
    when = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    return format_time(when).replace("+00:00", "Z")


def read_stats(
    index: str,
    kind: str,
    response: Mapping[str, Any],
    size_bytes: int | None,
    *,
    claims: int = 0,
) -> IndexStats:
    """Build `IndexStats` from the search answer to `stats_aggregations`."""
    aggs = response.get("aggregations", {})
    no_namespace = aggs["no_namespace"]
    namespaces = [
        Group(None, int(no_namespace["doc_count"]), _time(no_namespace.get("newest")))
    ]
    if namespaces[0].entries == 0:
        namespaces = []
    namespaces += [
        Group(str(b["key"]), int(b["doc_count"]), _time(b.get("newest")))
        for b in aggs["namespaces"]["buckets"]
    ]
    configurations = [
        Group(
            str(b["key"]),
            int(b["doc_count"]),
            _time(b.get("newest")),
            _sample_model(b.get("sample")),
        )
        for b in aggs["configurations"]["buckets"]
    ]
    return IndexStats(
        index=index,
        kind=kind,
        entries=int(response["hits"]["total"]["value"]),
        size_bytes=size_bytes,
        oldest=_time(aggs.get("oldest")),
        newest=_time(aggs.get("newest")),
        namespaces=namespaces,
        namespaces_other=int(aggs["namespaces"].get("sum_other_doc_count", 0)),
        configurations=configurations,
        configurations_other=int(aggs["configurations"].get("sum_other_doc_count", 0)),
        configuration_count=int(aggs["configuration_count"].get("value", 0)),
        claims=claims,
    )


def _sample_model(sample: Mapping[str, Any] | None) -> str | None:
    hits = sample.get("hits", {}).get("hits", []) if sample else []
    for hit in hits:
        name = model_name(hit.get("_source", {}).get("llm_params"))
        if name:
            return name
    return None


# --- check ---


@dataclass(frozen=True)
class Check:
    """One line of a check: what was checked, whether it passed, and details."""

    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """The result of checking access to an index; ``ok`` when every check passed."""

    index: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "ok": self.ok, **asdict(self)}


def privilege_checks(
    privileges: Mapping[str, bool], *, index_exists: bool | None
) -> Iterator[Check]:
    """One `Check` per privilege ``check()`` asks about, failing where its
    verdict does (`breaker.is_required`)."""
    for privilege in PRIVILEGES:
        has = bool(privileges.get(privilege.name))
        required = is_required(privilege, index_exists=index_exists)
        detail = privilege.needed_by if has else f"missing ({privilege.needed_by})"
        if not has and not required:
            detail += ", not required"
        yield Check(f"privilege {privilege.name}", has or not required, detail)


# --- durations for --ttl and --older-than ---

_DURATION = re.compile(r"(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw]?)")
_UNITS = {"s": 1, "": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90"``/``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` as a positive
    `timedelta`; `ValueError` otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"not a duration: {text!r} (use seconds, or a number with s, m, h, "
            "d or w, such as 7d)"
        )
    seconds = float(match["amount"]) * _UNITS[match["unit"]]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, not {text!r}")
    return timedelta(seconds=seconds)
