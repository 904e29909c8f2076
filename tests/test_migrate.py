"""Migration of indices that langchain-elasticsearch itself wrote, on the real node.

The source documents are written by langchain-elasticsearch 1.0.0 in its own
environment (`tests/reference.py`, built once and cached outside the
repository), by a LangChain model's ``invoke`` and by ``CacheBackedEmbeddings``,
with the writer's local time zone at UTC+05:30. The migrated entries are then
read as hits through our classes, the same way.
"""

from __future__ import annotations

import inspect
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_es_cache import (
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    ElasticsearchSemanticCache,
    MigrationError,
    MigrationReport,
    migrate,
)
from langchain_es_cache._common.migration import reference_llm_id
from tests import cli_run, reference
from tests.clock import FakeClock
from tests.models import CountingChatModel, CountingEmbeddings, CountingLLM
from utils import es_server

try:
    from langchain_classic.embeddings import CacheBackedEmbeddings
except ImportError:  # langchain-core 0.3
    from langchain.embeddings import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        CacheBackedEmbeddings,
    )

# As the writer uses it: langchain 0.3's CacheBackedEmbeddings has no key_encoder.
KEY_ENCODER: dict[str, Any] = (
    {"key_encoder": "sha256"}
    if "key_encoder"
    in inspect.signature(CacheBackedEmbeddings.from_bytes_store).parameters
    else {}
)

WRITER_TZ = "XYZ-5:30"
"""The writers' local time zone, in POSIX TZ syntax: UTC+05:30 (no DST)."""
SOURCE_ZONE = timezone(timedelta(hours=5, minutes=30))

CHAT = [
    ("What is the capital of France?", "Paris."),
    ("Who wrote Hamlet?", "Shakespeare."),
]
COMPLETION = ["Once upon a time"]
HIDDEN_PROMPT = [("A prompt stored without its text", "hidden")]
HIDDEN_PARAMS = [("A prompt stored without its parameters", "no params")]
METADATA = {"team": "search", "tier": 2}

TEXTS_A = ["alpha", "beta"]  # an embeddings store with namespace "tenant-a"
TEXTS_NONE = ["gamma"]  # one without a namespace
TEXTS_HIDDEN = ["delta"]  # store_input=False


def llm_request(index: str) -> dict[str, Any]:
    return {
        "kind": "llm",
        "index": index,
        "caches": [
            {"metadata": METADATA, "chat": CHAT, "completion": COMPLETION},
            {"store_input": False, "chat": HIDDEN_PROMPT},
            {"store_input_params": False, "chat": HIDDEN_PARAMS},
        ],
    }


def embeddings_request(index: str) -> dict[str, Any]:
    return {
        "kind": "embeddings",
        "index": index,
        "stores": [
            {"namespace": "tenant-a", "texts": TEXTS_A, "metadata": {"m": "x"}},
            {"texts": TEXTS_NONE},
            {"store_input": False, "texts": TEXTS_HIDDEN},
        ],
    }


def drop(admin: Elasticsearch, *names: str) -> None:
    for name in names:
        existing = admin.indices.get(index=f"{name}*", expand_wildcards="all")
        for index in existing:
            admin.indices.delete(index=index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def llm_source(
    es_conn: es_server.Connection, admin: Elasticsearch
) -> Iterator[tuple[str, datetime, datetime]]:
    """An index langchain-elasticsearch's ElasticsearchCache wrote; the UTC
    times just before and after."""
    name = f"test-{uuid.uuid4().hex[:12]}-ref-llm"
    times = reference.write(es_conn, llm_request(name), WRITER_TZ)
    yield name, *_span(times)
    drop(admin, name)


@pytest.fixture(scope="module")
def embeddings_source(
    es_conn: es_server.Connection, admin: Elasticsearch
) -> Iterator[tuple[str, datetime, datetime]]:
    name = f"test-{uuid.uuid4().hex[:12]}-ref-emb"
    times = reference.write(es_conn, embeddings_request(name), WRITER_TZ)
    yield name, *_span(times)
    drop(admin, name)


def _span(times: dict[str, str]) -> tuple[datetime, datetime]:
    before = datetime.fromisoformat(times["before"])
    # Stored to the millisecond, cut down.
    before = before.replace(microsecond=before.microsecond // 1000 * 1000)
    return before, datetime.fromisoformat(times["after"])


def snapshot(admin: Elasticsearch, index: str) -> dict[str, Any]:
    """Every document of `index` with its version, and its mapping."""
    admin.indices.refresh(index=index)
    docs = admin.search(index=index, size=1000, seq_no_primary_term=True, version=True)
    return {
        "docs": {
            hit["_id"]: (hit["_version"], hit["_seq_no"], hit["_source"])
            for hit in docs["hits"]["hits"]
        },
        "mapping": admin.indices.get_mapping(index=index).body,
    }


def stored(admin: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    admin.indices.refresh(index=index)
    hits = admin.search(index=index, size=1000)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def counts(report: MigrationReport) -> dict[str, int]:
    data = report.as_dict()
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, int) and not isinstance(v, bool) and v
    }


# --- the LLM cache ------------------------------------------------------------


def test_llm_entries_are_hits_through_langchain(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    source, before, after = llm_source
    original = snapshot(admin, source)
    progress: list[tuple[int, int]] = []
    report = migrate(
        admin,
        source,
        index_name,
        source_timezone=SOURCE_ZONE,
        batch_size=2,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert report.kind == "llm"
    assert counts(report) == {"scanned": 5, "created": 3, "no_input": 2, "skipped": 2}
    assert sorted(report.examples["no_input"])[0].endswith(
        ("no llm_input", "no llm_params")
    )
    assert {e.split(": ")[1] for e in report.examples["no_input"]} == {
        "no llm_input",
        "no llm_params",
    }
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert snapshot(admin, source) == original  # SOURCE is never modified

    cache = ElasticsearchCache(index_name, client=admin)
    for prompt, answer in CHAT:
        model = CountingChatModel(cache=cache, answer="never asked")
        message = model.invoke(prompt)
        assert model.calls == 0
        assert message.content == answer
        assert message.response_metadata["model_name"] == "counting-1"
    llm = CountingLLM(cache=cache)
    assert llm.invoke(COMPLETION[0]) == f"completion of {COMPLETION[0]!r}"
    assert llm.calls == 0
    assert cache.stats().hits == 3
    assert cache.stats().tokens_saved == 13 * len(CHAT)  # the stored usage

    for document in stored(admin, index_name).values():
        written = datetime.fromisoformat(document["timestamp"])
        assert written.utcoffset() == timedelta(0)
        assert before <= written <= after, (before, written, after)
        assert document["metadata"] == METADATA
        assert document["llm_input"] and document["llm_params"]


def test_entries_without_their_inputs_stay_misses(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    migrate(admin, llm_source[0], index_name, source_timezone=SOURCE_ZONE)
    cache = ElasticsearchCache(index_name, client=admin)
    for prompt, _ in HIDDEN_PROMPT + HIDDEN_PARAMS:
        model = CountingChatModel(cache=cache, answer="asked")
        assert model.invoke(prompt).content == "asked"
        assert model.calls == 1


def test_second_run_changes_nothing(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    source = llm_source[0]
    migrate(admin, source, index_name, source_timezone=SOURCE_ZONE)
    first = snapshot(admin, index_name)
    again = migrate(admin, source, index_name, source_timezone=SOURCE_ZONE)
    assert counts(again) == {
        "scanned": 5,
        "unchanged": 3,
        "no_input": 2,
        "skipped": 2,
    }
    assert snapshot(admin, index_name) == first  # not even rewritten


def test_dry_run_writes_and_creates_nothing(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    report = migrate(admin, llm_source[0], index_name, dry_run=True)
    assert report.dry_run
    assert counts(report) == {"scanned": 5, "created": 3, "no_input": 2, "skipped": 2}
    assert not admin.indices.exists(index=index_name)


def test_default_zone_is_this_machines(
    admin: Elasticsearch,
    llm_source: tuple[str, datetime, datetime],
    index_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, before, after = llm_source
    monkeypatch.setenv("TZ", WRITER_TZ)
    time.tzset()
    try:
        migrate(admin, source, index_name)
    finally:
        monkeypatch.undo()
        time.tzset()
    for document in stored(admin, index_name).values():
        assert before <= datetime.fromisoformat(document["timestamp"]) <= after


def test_newer_copy_wins(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    """DEST's older copy is replaced; a newer one (written by our cache since)
    is kept."""
    source = llm_source[0]
    (france, paris), (hamlet, _) = CHAT
    clock = FakeClock()
    cache = ElasticsearchCache(index_name, client=admin, clock=clock)
    clock.now = datetime(2000, 1, 1, tzinfo=timezone.utc)
    CountingChatModel(cache=cache, answer="stale").invoke(france)
    clock.now = datetime(2100, 1, 1, tzinfo=timezone.utc)
    CountingChatModel(cache=cache, answer="rewritten by us").invoke(hamlet)

    report = migrate(admin, source, index_name, source_timezone=SOURCE_ZONE)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    model = CountingChatModel(cache=cache, answer="never asked")
    assert model.invoke(france).content == paris
    assert model.invoke(hamlet).content == "rewritten by us"
    assert model.calls == 0


def test_llm_entries_go_to_a_namespace(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    migrate(admin, llm_source[0], index_name, namespace="team-a")
    prompt, answer = CHAT[0]
    scoped = CountingChatModel(
        cache=ElasticsearchCache(index_name, client=admin, namespace="team-a")
    )
    assert scoped.invoke(prompt).content == answer and scoped.calls == 0
    unscoped = CountingChatModel(cache=ElasticsearchCache(index_name, client=admin))
    unscoped.invoke(prompt)
    assert unscoped.calls == 1


def test_source_behind_an_alias_gives_the_newest_copy(
    es_conn: es_server.Connection, admin: Elasticsearch, index_name: str
) -> None:
    """Two indices behind one alias hold copies of one entry: the newest wins,
    within a batch and across batches."""
    prompt = CHAT[0][0]
    old, new = f"{index_name}-src-old", f"{index_name}-src-new"
    for index, answer in ((old, "old answer"), (new, "new answer")):
        reference.write(
            es_conn,
            {"kind": "llm", "index": index, "caches": [{"chat": [(prompt, answer)]}]},
            WRITER_TZ,
        )
    alias = f"{index_name}-src"
    admin.indices.update_aliases(
        actions=[{"add": {"index": index, "alias": alias}} for index in (old, new)]
    )
    for batch_size in (1, 500):
        dest = f"{index_name}-dest{batch_size}"
        report = migrate(admin, alias, dest, batch_size=batch_size)
        assert report.scanned == 2 and report.created == 1
        assert report.updated + report.unchanged == 1
        model = CountingChatModel(cache=ElasticsearchCache(dest, client=admin))
        assert model.invoke(prompt).content == "new answer"
        assert model.calls == 0


def test_documents_that_cannot_be_rekeyed_are_counted(
    admin: Elasticsearch, index_name: str
) -> None:
    """Hostile and damaged documents in a source: counted, never guessed."""
    source = f"{index_name}-src"
    prompt, llm_string = "2 + 2?", "[('_type', 'fake')]"
    good = {
        "llm_output": [dumps(Generation(text="4"))],
        "timestamp": "2026-01-01T00:00:00",
    }
    docs: dict[str, dict[str, Any]] = {
        # Right inputs, right id.
        reference_llm_id(prompt, llm_string): {
            **good,
            "llm_input": prompt,
            "llm_params": llm_string,
        },
        # Inputs that do not give back the id.
        "0" * 32: {**good, "llm_input": "other", "llm_params": llm_string},
        # An answer no lookup could read.
        reference_llm_id("bad", llm_string): {
            **good,
            "llm_output": ["garbage"],
            "llm_input": "bad",
            "llm_params": llm_string,
        },
        # No time: copied without one.
        reference_llm_id("untimed", llm_string): {
            "llm_output": good["llm_output"],
            "llm_input": "untimed",
            "llm_params": llm_string,
        },
        # An embeddings entry in an LLM index.
        "e" * 32: {"vector_dump": "AAAA", "text_input": "k"},
    }
    for doc_id, body in docs.items():
        admin.index(index=source, id=doc_id, document=body)
    admin.indices.refresh(index=source)
    with pytest.raises(MigrationError, match="both"):
        migrate(admin, source, index_name)
    report = migrate(admin, source, index_name, kind="llm")
    assert counts(report) == {
        "scanned": 5,
        "created": 2,
        "mismatched": 1,
        "unreadable": 1,
        "other_kind": 1,
        "without_timestamp": 1,
        "skipped": 3,
    }
    cache = ElasticsearchCache(index_name, client=admin)
    assert cache.lookup(prompt, llm_string) == [Generation(text="4")]
    assert cache.lookup("untimed", llm_string) == [Generation(text="4")]
    assert cache.lookup("other", llm_string) is None
    expiring = ElasticsearchCache(index_name, client=admin, ttl=10**9)
    assert expiring.lookup("untimed", llm_string) is None  # unknown age: expired


def test_rejected_writes_are_counted(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    """DEST's mapping refuses the metadata: reported per entry, others written."""
    cache = ElasticsearchCache(index_name, client=admin, metadata={"team": {"a": 1}})
    cache.update("seed", "seed", [Generation(text="x")])
    report = migrate(admin, llm_source[0], index_name, source_timezone=SOURCE_ZONE)
    # The entries carrying METADATA (team is a string there) are refused; the
    # two stored without their inputs are skipped.
    assert report.failed == 3 and report.created == 0
    assert "document_parsing_exception" in report.examples["failed"][0]


# --- the embeddings cache -----------------------------------------------------


def test_embeddings_are_hits_through_cache_backed_embeddings(
    admin: Elasticsearch,
    embeddings_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    source, before, after = embeddings_source
    original = snapshot(admin, source)
    report = migrate(admin, source, index_name, source_timezone=SOURCE_ZONE)
    assert report.kind == "embeddings"
    assert counts(report) == {"scanned": 4, "created": 3, "no_input": 1, "skipped": 1}
    assert snapshot(admin, source) == original

    for namespace, texts in (("tenant-a", TEXTS_A), (None, TEXTS_NONE)):
        model = CountingEmbeddings()
        store = ElasticsearchEmbeddingsCache(
            index_name, client=admin, namespace=namespace
        )
        embedder = CacheBackedEmbeddings.from_bytes_store(
            model, store, namespace="counting-8", **KEY_ENCODER
        )
        assert embedder.embed_documents(texts) == [model.vector(t) for t in texts]
        assert model.embedded == []
        assert store.stats().hits == len(texts)
    for document in stored(admin, index_name).values():
        assert before <= datetime.fromisoformat(document["timestamp"]) <= after
    again = migrate(admin, source, index_name, source_timezone=SOURCE_ZONE)
    assert (again.created, again.unchanged) == (0, 3)


def test_embeddings_keep_their_own_namespace(
    admin: Elasticsearch,
    embeddings_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    with pytest.raises(ValueError, match="keep the namespace"):
        migrate(admin, embeddings_source[0], index_name, namespace="x")
    with pytest.raises(ValueError, match="keep the namespace"):
        migrate(
            admin, embeddings_source[0], index_name, kind="embeddings", namespace="x"
        )
    assert not admin.indices.exists(index=index_name)


# --- what the migration refuses -----------------------------------------------


def test_empty_source_migrates_nothing(admin: Elasticsearch, index_name: str) -> None:
    admin.indices.create(index=f"{index_name}-src")
    report = migrate(admin, f"{index_name}-src", index_name)
    assert report.kind is None and report.scanned == 0
    assert not admin.indices.exists(index=index_name)


def test_refusals_write_nothing(
    admin: Elasticsearch,
    llm_source: tuple[str, datetime, datetime],
    embeddings_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    source = llm_source[0]
    original = snapshot(admin, source)
    with pytest.raises(MigrationError, match="does not exist"):
        migrate(admin, f"{index_name}-missing", index_name)
    with pytest.raises(MigrationError, match="different"):
        migrate(admin, source, source)
    alias = f"{index_name}-alias"
    admin.indices.put_alias(index=source, name=alias)
    with pytest.raises(MigrationError, match="share the index"):
        migrate(admin, source, alias)
    admin.indices.delete_alias(index=source, name=alias)
    # A source of ours.
    ours = f"{index_name}-ours"
    ElasticsearchCache(ours, client=admin).update("p", "l", [Generation(text="x")])
    admin.indices.refresh(index=ours)
    with pytest.raises(MigrationError, match="written by langchain-es-cache"):
        migrate(admin, ours, index_name)
    # Unknown documents.
    admin.index(index=f"{index_name}-odd", document={"a": 1}, refresh=True)
    with pytest.raises(MigrationError, match="cannot tell"):
        migrate(admin, f"{index_name}-odd", index_name)
    # DEST of the wrong kind, a semantic cache, or langchain-elasticsearch's.
    with pytest.raises(MigrationError, match="other kind"):
        migrate(admin, embeddings_source[0], ours)
    semantic = f"{index_name}-semantic"
    ElasticsearchSemanticCache(semantic, CountingEmbeddings(), client=admin).update(
        "p", "l", [Generation(text="x")]
    )
    with pytest.raises(MigrationError, match="semantic cache"):
        migrate(admin, source, semantic)
    with pytest.raises(MigrationError, match="other kind"):
        migrate(admin, embeddings_source[0], source)
    theirs = f"{index_name}-theirs"
    admin.indices.create(
        index=theirs,
        mappings={"properties": {"llm_output": {"type": "text", "index": False}}},
    )
    with pytest.raises(MigrationError, match="not a langchain-es-cache index"):
        migrate(admin, source, theirs)
    for bad in ({"kind": "vectors"}, {"batch_size": 0}, {"batch_size": 10_001}):
        with pytest.raises(ValueError):
            migrate(admin, source, index_name, **bad)
    with pytest.raises(TypeError, match="client"):
        migrate("http://localhost:9200", source, index_name)  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(ValueError, match="lowercase"):
        migrate(admin, source, "Dest")
    assert not admin.indices.exists(index=index_name)
    assert snapshot(admin, source) == original


# --- the command line -----------------------------------------------------------


def test_command_line_migrates(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    llm_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    source, before, after = llm_source
    # The machine's local zone is the writers': the default reading is right.
    env = cli_run.environment(es_conn, TZ=WRITER_TZ)
    result = cli_run.run("migrate", source, index_name, "--batch-size", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "migrate: 2 / 5 documents read (40%)",
        "migrate: 4 / 5 documents read (80%)",
        "migrate: 5 / 5 documents read (100%)",
    ]
    lines = dict(line.rsplit(None, 1) for line in result.stdout.splitlines()[2:8])
    assert lines["created"] == "3"
    assert (
        lines["not copied: stored without its key's input (cannot be re-keyed)"] == "2"
    )
    assert "examples (document id: reason):" in result.stdout

    model = CountingChatModel(cache=ElasticsearchCache(index_name, client=admin))
    for prompt, answer in CHAT:
        assert model.invoke(prompt).content == answer
    assert model.calls == 0
    for document in stored(admin, index_name).values():
        assert before <= datetime.fromisoformat(document["timestamp"]) <= after

    again = cli_run.run("migrate", source, index_name, "--json", env=env)
    assert again.returncode == 0
    report = json.loads(again.stdout)
    assert (report["created"], report["unchanged"], report["skipped"]) == (0, 3, 2)
    dry = cli_run.ok_json(
        "migrate", source, f"{index_name}-dry", "--dry-run", "--no-progress", env=env
    )
    assert (dry["dry_run"], dry["created"]) == (True, 3)
    assert not admin.indices.exists(index=f"{index_name}-dry")


def test_command_line_source_timezone(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    llm_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    source, before, after = llm_source
    env = cli_run.environment(es_conn, TZ="UTC0")
    for zone in ("+05:30", "Asia/Kolkata"):
        dest = f"{index_name}-{zone[1:3].lower()}"
        result = cli_run.run(
            "migrate", source, dest, "--source-timezone", zone, "--no-progress", env=env
        )
        assert result.returncode == 0, result.stderr
        for document in stored(admin, dest).values():
            assert before <= datetime.fromisoformat(document["timestamp"]) <= after
    for bad in ("Mars/Olympus", "+25:00", "5:30"):
        result = cli_run.run(
            "migrate", source, index_name, "--source-timezone", bad, env=env
        )
        assert result.returncode == 2
        assert "time zone" in result.stderr or "offset" in result.stderr
    assert not admin.indices.exists(index=index_name)


def test_command_line_failures(
    es_conn: es_server.Connection,
    admin: Elasticsearch,
    llm_source: tuple[str, datetime, datetime],
    index_name: str,
) -> None:
    env = cli_run.environment(es_conn)
    source = llm_source[0]
    ours = f"{index_name}-ours"
    ElasticsearchCache(ours, client=admin).update("p", "l", [Generation(text="x")])
    admin.indices.refresh(index=ours)
    line = cli_run.failure(cli_run.run("migrate", ours, index_name, env=env))
    assert line.startswith("langchain-es-cache: error: ")
    assert "written by langchain-es-cache" in line
    line = cli_run.failure(cli_run.run("migrate", source, source, env=env))
    assert "different" in line
    # Writes that DEST's mapping refuses: exit 1, the first reason on one line.
    ElasticsearchCache(index_name, client=admin, metadata={"team": {"a": 1}}).update(
        "seed", "seed", [Generation(text="x")]
    )
    result = cli_run.run("migrate", source, index_name, "--no-progress", env=env)
    line = cli_run.failure(result)
    assert "3 entries could not be written" in line
    assert "document_parsing_exception" in line
    assert "failed writes" in result.stdout


def test_dest_behind_an_alias(
    admin: Elasticsearch, llm_source: tuple[str, datetime, datetime], index_name: str
) -> None:
    """DEST an alias over two indices of ours: writes go to its write index, and
    a copy in the other index counts as DEST's."""
    (france, paris), (hamlet, _) = CHAT
    first, second, alias = (f"{index_name}-1", f"{index_name}-2", f"{index_name}-a")
    clock = FakeClock()
    clock.now = datetime(2100, 1, 1, tzinfo=timezone.utc)
    ElasticsearchCache(first, client=admin, clock=clock).update(
        _chat_prompt(hamlet),
        CountingChatModel()._get_llm_string(),
        [ChatGeneration(message=AIMessage(content="newer, in the first index"))],
    )
    admin.indices.create(index=second)
    admin.indices.update_aliases(
        actions=[
            {"add": {"index": first, "alias": alias}},
            {"add": {"index": second, "alias": alias, "is_write_index": True}},
        ]
    )
    report = migrate(admin, llm_source[0], alias, source_timezone=SOURCE_ZONE)
    assert (report.created, report.unchanged, report.failed) == (2, 1, 0)
    assert count_in(admin, second) == 2 and count_in(admin, first) == 1
    model = CountingChatModel(cache=ElasticsearchCache(alias, client=admin))
    assert model.invoke(france).content == paris
    assert model.invoke(hamlet).content == "newer, in the first index"
    assert model.calls == 0


def _chat_prompt(text: str) -> str:
    return dumps([HumanMessage(content=text)])


def count_in(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    return int(admin.count(index=index)["count"])
