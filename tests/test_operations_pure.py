"""Pure logic of the migration, the command line's readings, nearest and tokens.

No server: conversions of documents shaped as langchain-elasticsearch writes
them (the integration tests use documents it really wrote).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache._common import (
    breaker,
    inspection,
    migration,
    nearest,
    usage,
)
from langchain_es_cache._common.documents import (
    decode_vector,
    encode_vector,
    format_time,
)
from langchain_es_cache._common.keys import embedding_key, llm_key, llm_string_hash
from langchain_es_cache._common.prompts import prompt_text
from langchain_es_cache._common.queries import semantic_knn
from langchain_es_cache.errors import MigrationError
from langchain_es_cache.types import MigrationReport

IST = timezone(timedelta(hours=5, minutes=30))
PROMPT, LLM = "What is 2 + 2?", "[('_type', 'fake'), ('model', 'm-1')]"
OUTPUT = [dumps(Generation(text="4"))]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def llm_hit(**source: object) -> dict[str, Any]:
    body = {
        "llm_output": OUTPUT,
        "llm_input": PROMPT,
        "llm_params": LLM,
        "timestamp": "2026-11-26T17:30:00.123456",
        **source,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return {"_id": md5(PROMPT + LLM), "_source": body}


def convert(hit: dict[str, object], **options: object) -> object:
    settings: dict[str, object] = {"namespace": None, "zone": IST, "index": "src"}
    settings.update(options)
    kind = "embeddings" if "vector_dump" in hit["_source"] else "llm"  # type: ignore[operator]
    return migration.convert(kind, hit, **settings)  # type: ignore[arg-type]


# --- re-keying ---


def test_llm_entry_is_rekeyed_with_answer_metadata_and_utc_time() -> None:
    entry = convert(llm_hit(metadata={"team": "search"}))
    assert isinstance(entry, migration.Entry)
    assert entry.doc_id == llm_key(PROMPT, LLM)
    assert entry.document["llm_output"] == OUTPUT
    assert entry.document["llm_input"] == PROMPT
    assert entry.document["llm_params"] == LLM
    assert entry.document["llm_string_hash"] == llm_string_hash(LLM)
    assert entry.document["metadata"] == {"team": "search"}
    # 17:30 at +05:30 is noon UTC; stored to the millisecond.
    assert entry.document["timestamp"] == "2026-11-26T12:00:00.123+00:00"
    assert entry.written == datetime(2026, 11, 26, 12, 0, 0, 123000, timezone.utc)
    assert "namespace" not in entry.document


def test_llm_entry_goes_to_the_namespace_asked() -> None:
    entry = convert(llm_hit(), namespace="team-a")
    assert isinstance(entry, migration.Entry)
    assert entry.doc_id == llm_key(PROMPT, LLM, "team-a")
    assert entry.document["namespace"] == "team-a"


def test_answer_is_copied_as_stored() -> None:
    # Same meaning, other spacing than this langchain-core's dumps.
    stored = [json.dumps(json.loads(OUTPUT[0]), indent=1)]
    entry = convert(llm_hit(llm_output=stored))
    assert isinstance(entry, migration.Entry)
    assert entry.document["llm_output"] == stored


@pytest.mark.parametrize(
    ("hit", "reason", "detail"),
    [
        (llm_hit(llm_input=None), "no_input", "no llm_input"),
        (llm_hit(llm_params=None), "no_input", "no llm_params"),
        (
            llm_hit(llm_input=None, llm_params=None),
            "no_input",
            "no llm_input or llm_params",
        ),
        (llm_hit(llm_input=7), "no_input", "no llm_input"),
        # "ab" + "c" and "a" + "bc" share the reference's id: never guessed.
        (
            {**llm_hit(), "_id": md5("x" + LLM)},
            "mismatched",
            "is not the id",
        ),
        (llm_hit(llm_output=["not json"]), "unreadable", "llm_output"),
        (llm_hit(llm_output=[]), "unreadable", "llm_output"),
        (llm_hit(llm_output="text"), "unreadable", "llm_output"),
        (llm_hit(metadata=["a"]), "unreadable", "must be a dict"),
        ({"_id": "x"}, "unreadable", "no _source"),
        ({"_id": "x", "_source": {"other": 1}}, "other_kind", "'unknown'"),
    ],
)
def test_llm_entries_that_are_not_copied(
    hit: dict[str, object], reason: str, detail: str
) -> None:
    skip = migration.convert("llm", hit, namespace=None, zone=IST, index="src")
    assert isinstance(skip, migration.Skip)
    assert skip.reason == reason
    assert detail in skip.detail


def test_unreadable_generation_class_is_not_copied() -> None:
    # A class outside langchain-core would never load in a lookup of ours.
    foreign = json.dumps(
        {"lc": 1, "type": "constructor", "id": ["evil", "Thing"], "kwargs": {}}
    )
    skip = convert(llm_hit(llm_output=[foreign]))
    assert isinstance(skip, migration.Skip) and skip.reason == "unreadable"


def embedding_hit(
    key: str = "ns-8abc", namespace: str | None = "tenant", **source: object
) -> dict[str, Any]:
    body: dict[str, object] = {
        "vector_dump": encode_vector(b"\x00\x01vector"),
        "text_input": key,
        "timestamp": "2026-11-26T17:30:00.5",
        **source,
    }
    if namespace is not None:
        body["namespace"] = namespace
    body = {k: v for k, v in body.items() if v is not None}
    return {"_id": md5((namespace or "") + key), "_source": body}


def test_embedding_entry_keeps_its_namespace() -> None:
    entry = convert(embedding_hit(metadata={"m": 1}))
    assert isinstance(entry, migration.Entry)
    assert entry.doc_id == embedding_key("ns-8abc", "tenant")
    document = entry.document
    assert decode_vector(document["vector_dump"]) == b"\x00\x01vector"
    assert document["text_input"] == "ns-8abc"
    assert document["key_prefix"] == "ns-8abc"
    assert document["namespace"] == "tenant"
    assert document["metadata"] == {"m": 1}
    assert document["timestamp"] == "2026-11-26T12:00:00.500+00:00"


def test_embedding_entry_without_namespace() -> None:
    entry = convert(embedding_hit(namespace=None))
    assert isinstance(entry, migration.Entry)
    assert entry.doc_id == embedding_key("ns-8abc", None)
    assert "namespace" not in entry.document


@pytest.mark.parametrize(
    ("hit", "reason"),
    [
        (embedding_hit(text_input=None), "no_input"),
        ({**embedding_hit(), "_id": md5("ns-8abc")}, "mismatched"),
        (embedding_hit(vector_dump="%%% not base64"), "unreadable"),
        (embedding_hit(vector_dump=12), "unreadable"),
        (
            {"_id": "x", "_source": {**embedding_hit()["_source"], "namespace": 3}},
            "unreadable",
        ),
    ],
)
def test_embedding_entries_that_are_not_copied(
    hit: dict[str, object], reason: str
) -> None:
    skip = migration.convert("embeddings", hit, namespace=None, zone=IST, index="s")
    assert isinstance(skip, migration.Skip)
    assert skip.reason == reason


def test_entry_without_a_usable_time_is_copied_without_one() -> None:
    entry = convert(llm_hit(timestamp="yesterday"))
    assert isinstance(entry, migration.Entry)
    assert entry.written is None and "timestamp" not in entry.document


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-11-26T17:30:00", IST, datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
        (
            "2026-11-26T12:00:00",
            timezone.utc,
            datetime(2026, 11, 26, 12, tzinfo=timezone.utc),
        ),
        # An offset, when there is one, wins over the zone.
        ("2026-11-26T12:00:00Z", IST, datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
        (
            "2026-11-26T12:00:00+01:00",
            IST,
            datetime(2026, 11, 26, 11, tzinfo=timezone.utc),
        ),
        (
            "2026-11-26T12:00:00.999999",
            timezone.utc,
            datetime(2026, 11, 26, 12, 0, 0, 999000, timezone.utc),
        ),
        (None, IST, None),
        ("noon", IST, None),
        (
            "2026-11-26T12:00:00.5",
            timezone.utc,
            datetime(2026, 11, 26, 12, 0, 0, 500000, timezone.utc),
        ),
        (
            "2026-11-26T12:00:00.1234567Z",
            IST,
            datetime(2026, 11, 26, 12, 0, 0, 123000, timezone.utc),
        ),
    ],
)
def test_read_time(value: object, zone: timezone, expected: datetime | None) -> None:
    read = migration.read_time(value, zone)
    if expected is None:
        assert read is None
    else:
        assert read is not None and read.utcoffset() is not None
        assert read == expected  # aware datetimes compare as instants


def test_naive_time_defaults_to_this_machines_zone() -> None:
    naive = datetime(2026, 6, 1, 9, 30)
    read = migration.read_time(naive.isoformat(), None)
    assert read == naive.astimezone(timezone.utc)


def test_detect_kind() -> None:
    llm, emb = llm_hit()["_source"], embedding_hit()["_source"]
    assert migration.detect_kind("s", [llm, llm]) == "llm"
    assert migration.detect_kind("s", [emb]) == "embeddings"
    assert migration.detect_kind("s", []) is None
    with pytest.raises(MigrationError, match="both"):
        migration.detect_kind("s", [llm, emb])
    with pytest.raises(MigrationError, match="cannot tell"):
        migration.detect_kind("s", [{"a": 1}])
    with pytest.raises(MigrationError, match="langchain-es-cache"):
        migration.detect_kind("s", [{**llm, "llm_string_hash": "x"}])


def test_newest_copy_wins() -> None:
    old = migration.Entry("a", {}, datetime(2026, 1, 1, tzinfo=timezone.utc))
    new = migration.Entry("a", {"new": 1}, datetime(2026, 2, 1, tzinfo=timezone.utc))
    untimed = migration.Entry("a", {}, None)
    other = migration.Entry("b", {}, None)
    assert migration.newest_entries([old, new, untimed, other]) == [new, other]
    assert migration.newest_entries([untimed, old]) == [old]


def test_plan() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    entry = migration.Entry("a", {}, when)
    same = {"timestamp": format_time(when)}
    older = {"timestamp": format_time(when - timedelta(milliseconds=1))}
    assert migration.plan(entry, None) == "create"
    assert migration.plan(entry, older) == "update"
    assert migration.plan(entry, same) == "unchanged"
    assert migration.plan(entry, {}) == "update"  # DEST's copy has no known age
    assert migration.plan(migration.Entry("a", {}, None), older) == "unchanged"


@pytest.mark.parametrize(
    ("kind", "properties", "problem"),
    [
        ("llm", {}, None),
        ("llm", {"llm_string_hash": {}, "llm_output": {}}, None),
        ("embeddings", {"key_prefix": {}, "vector_dump": {}}, None),
        ("llm", {"llm_string_hash": {}, "llm_input_vector": {}}, "semantic"),
        ("llm", {"key_prefix": {}, "vector_dump": {}}, "other kind"),
        ("embeddings", {"llm_string_hash": {}, "llm_output": {}}, "other kind"),
        ("llm", {"llm_output": {}, "timestamp": {}}, "not a langchain-es-cache"),
        ("embeddings", {"vector_dump": {}}, "not a langchain-es-cache"),
    ],
)
def test_dest_problem(
    kind: str, properties: dict[str, object], problem: str | None
) -> None:
    found = migration.dest_problem(kind, "dest", properties)  # type: ignore[arg-type]
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_report_counts_and_examples() -> None:
    report = MigrationReport("s", "d", "llm", dry_run=False)
    for i in range(7):
        report.note("no_input", f"id{i}: no llm_input")
    report.note("mismatched", "x: y")
    assert report.no_input == 7 and report.skipped == 8
    assert len(report.examples["no_input"]) == MigrationReport.EXAMPLES_KEPT
    assert report.as_dict()["skipped"] == 8


# --- what the command line reads ---

SERIALIZED_CHAT = (
    json.dumps(
        {
            "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
            "kwargs": {"model_name": "gpt-4o-mini", "temperature": 0.0},
            "lc": 1,
            "type": "constructor",
        },
        sort_keys=True,
    )
    + "---[('stop', ['---'])]"
)


@pytest.mark.parametrize(
    ("llm_string", "name"),
    [
        (SERIALIZED_CHAT, "ChatOpenAI gpt-4o-mini"),
        (
            "[('_type', 'counting-chat'), ('model', 'counting-1'), ('n', 1), "
            "('stop', None), ('temperature', 0.0)]",
            "counting-chat counting-1",
        ),
        ("[('_type', 'counting-llm'), ('stop', None)]", "counting-llm"),
        ("[('client', <object at 0x1>), ('model_id', 'm-7')]", "m-7"),
        ('{"no": "model"}---[]', None),
        ("model=a temperature=0", None),
        ("{" * 100_000, None),
        (None, None),
    ],
)
def test_model_name(llm_string: object, name: str | None) -> None:
    assert inspection.model_name(llm_string) == name


def test_model_name_of_deeply_nested_json_is_none() -> None:
    assert inspection.model_name("[" * 50_000 + "]" * 50_000) is None
    assert inspection.model_name('{"a":' * 20_000 + "1" + "}" * 20_000 + "---") is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
        (" 3d ", 259200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert inspection.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "0d", "-1d", "7 days", "d", "1y", "1e3"])
def test_parse_bad_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        inspection.parse_duration(text)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        (["llm_output", "llm_string_hash"], "LLM cache"),
        (["llm_output", "llm_string_hash", "llm_input_vector"], "semantic LLM cache"),
        (["vector_dump", "key_prefix"], "embeddings cache"),
        (["value_dump", "graph_namespace_id"], "LangGraph node cache"),
        (["llm_output", "timestamp"], "langchain-elasticsearch LLM cache"),
        (["vector_dump"], "langchain-elasticsearch embeddings cache"),
        ([], "unknown"),
    ],
)
def test_index_kind(fields: list[str], kind: str) -> None:
    mappings: dict[str, Any] = {
        "i1": {"mappings": {"properties": {f: {} for f in fields}}}
    }
    assert inspection.index_kind(inspection.merged_properties(mappings)) == kind


def test_privilege_checks() -> None:
    only_read_write = {"read": True, "write": True}
    checks = {
        c.name: c
        for c in inspection.privilege_checks(only_read_write, index_exists=True)
    }
    assert list(checks) == [f"privilege {p.name}" for p in breaker.PRIVILEGES]
    assert all(c.ok for c in checks.values())
    assert "not required" in checks["privilege manage"].detail
    missing = {
        c.name: c
        for c in inspection.privilege_checks(only_read_write, index_exists=False)
    }
    assert not missing["privilege create_index"].ok
    reader = {
        c.name: c
        for c in inspection.privilege_checks({"read": True}, index_exists=True)
    }
    assert not reader["privilege write"].ok and reader["privilege read"].ok
    assert reader["privilege write"].detail == "missing (updates and deletes)"
    # A cluster without security: check() holds every privilege granted.
    _, everything = breaker.NO_SECURITY
    off = inspection.privilege_checks(everything, index_exists=False)
    assert all(c.ok and "missing" not in c.detail for c in off)


@pytest.mark.parametrize("index_exists", [True, False, None])
def test_privilege_lines_fail_where_check_does(index_exists: bool | None) -> None:
    """The command line's lines and check()'s verdict, over every combination
    of the privileges that decide it."""
    deciding = ["read", "write", "create_index"]
    for held in itertools.product([True, False], repeat=len(deciding)):
        privileges = dict(zip(deciding, held, strict=True))
        if index_exists is None and privileges["read"]:
            continue  # check() reads whether the index exists when it may
        lines = list(inspection.privilege_checks(privileges, index_exists=index_exists))
        failed = {c.name.removeprefix("privilege ") for c in lines if not c.ok}
        try:
            breaker.check_report("i", "u", privileges, index_exists=index_exists)
        except breaker.PrivilegeError as exc:
            assert failed, privileges
            for name in failed & {"read", "write"}:
                assert f"{name!r}" in str(exc)
        else:
            assert not failed, privileges


# --- nearest and tokens ---


@pytest.mark.parametrize(
    ("score", "cosine"),
    [(1.0, 1.0), (0.5, 0.0), (0.0, -1.0), (0.75, 0.5), (1.0000001, 1.0)],
)
def test_cosine_from_score(score: float, cosine: float) -> None:
    assert nearest.cosine_from_score(score) == pytest.approx(cosine)


def test_knn_without_threshold_keeps_every_other_filter() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    arguments = {"namespace": "ns", "ttl": timedelta(hours=1), "now": now}
    lookup = semantic_knn([1.0], LLM, threshold=0.9, **arguments)  # type: ignore[arg-type]
    found = semantic_knn([1.0], LLM, threshold=None, **arguments)  # type: ignore[arg-type]
    assert "similarity" not in found
    assert {k: v for k, v in lookup.items() if k != "similarity"} == found


def test_nearest_entry_text_is_the_embedded_text() -> None:
    chat = dumps([HumanMessage(content="Hello"), AIMessage(content="Hi")])
    hit = {
        "_score": 0.75,
        "_source": {"llm_input": chat, "timestamp": "2026-01-01T00:00:00.000Z"},
    }
    entry = nearest.nearest_entry(hit)
    assert entry.similarity == 0.5
    assert entry.prompt == chat and entry.text == prompt_text(chat) == "Hello\nai: Hi"
    assert entry.written == datetime(2026, 1, 1, tzinfo=timezone.utc)
    bare = nearest.nearest_entry({"_score": 1.0, "_source": {}})
    assert (bare.similarity, bare.prompt, bare.text, bare.written) == (
        1.0,
        None,
        None,
        None,
    )


def chat(usage: dict[str, int] | None) -> ChatGeneration:
    return ChatGeneration(message=AIMessage(content="x", usage_metadata=usage))


def test_tokens_of() -> None:
    full = {"input_tokens": 7, "output_tokens": 6, "total_tokens": 13}
    assert usage.tokens_of([chat(full), chat(full)]) == 26
    assert usage.tokens_of([chat(None), Generation(text="plain")]) == 0
    no_total = {"input_tokens": 2, "output_tokens": 3, "total_tokens": 0}
    assert usage.tokens_of([chat(no_total)]) == 5
