"""The command line in subprocesses against the real node: stats, check, clear,
purge-expired, connection settings and errors (migrate: tests/test_migrate.py)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from langchain_core.outputs import Generation

from langchain_es_cache import (
    ElasticsearchCache,
    ElasticsearchEmbeddingsCache,
    __version__,
)
from langchain_es_cache._common.keys import llm_string_hash
from langchain_es_cache._common.single_flight import ENTRIES_ONLY
from langchain_es_cache.errors import CacheError
from tests import cli_run
from tests.cli_run import environment, failure, ok_json, run
from tests.clock import FakeClock
from tests.models import CountingChatModel
from utils import es_server

OTHER_LLM = "[('_type', 'other-chat'), ('model_name', 'big-2')]"


@pytest.fixture
def env(es_conn: es_server.Connection) -> dict[str, str]:
    if es_conn.api_key is None:
        pytest.skip("the cluster in ES_URL was given without ES_API_KEY")
    return environment(es_conn)


def count(admin: Elasticsearch, index: str) -> int:
    """Entries in `index` (not single_flight's claims)."""
    admin.indices.refresh(index=index)
    return int(admin.count(index=index, query=ENTRIES_ONLY)["count"])


def claims(admin: Elasticsearch, index: str) -> int:
    admin.indices.refresh(index=index)
    query = {"exists": {"field": "claim_expires"}}
    return int(admin.count(index=index, query=query)["count"])


NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
"""When the fixture's entries are written: real time, so that the command
line's own clock sees the day-old entry as a day old."""


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def filled(admin: Elasticsearch, index_name: str) -> Iterator[str]:
    """An LLM cache index: 3 entries without a namespace (2 of a chat model,
    written a day apart, 1 of another configuration, metadata team=b), and 2
    in namespace "ns" (team=a); all but one written at `NOW`."""
    clock = FakeClock()
    clock.now = NOW - timedelta(days=1)
    plain = ElasticsearchCache(
        index_name, client=admin, clock=clock, metadata={"team": "b"}
    )
    CountingChatModel(cache=plain).invoke("old question")
    clock.now = NOW
    CountingChatModel(cache=plain).invoke("new question")
    plain.update("p", OTHER_LLM, [Generation(text="x")])
    scoped = ElasticsearchCache(
        index_name, client=admin, clock=clock, namespace="ns", metadata={"team": "a"}
    )
    for prompt in ("one", "two"):
        scoped.update(prompt, OTHER_LLM, [Generation(text=prompt)])
    # A miss of a single_flight cache leaves its claim: never an entry.
    claimer = ElasticsearchCache(index_name, client=admin, single_flight=60)
    assert claimer.lookup("unanswered", OTHER_LLM) is None
    admin.indices.refresh(index=index_name)  # stats counts what is searchable
    yield index_name


# --- entry points --------------------------------------------------------------


def test_console_script_and_module(env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("langchain-es-cache")
    assert script.is_file(), "pip install -e . installs the console script"
    for command in ([str(script)], cli_run.COMMAND):
        result = subprocess.run(
            [*command, "--version"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0
        assert result.stdout.strip() == f"langchain-es-cache {__version__}"


# --- stats ---------------------------------------------------------------------


def test_stats(env: dict[str, str], filled: str) -> None:
    stats = ok_json("stats", filled, env=env)
    assert stats["kind"] == "LLM cache"
    assert stats["entries"] == 5
    assert stats["claims"] == 1
    assert stats["size_bytes"] > 0
    assert stats["oldest"] == iso(NOW - timedelta(days=1))
    assert stats["newest"] == iso(NOW)
    namespaces = {g["key"]: g["entries"] for g in stats["namespaces"]}
    assert namespaces == {None: 3, "ns": 2}
    configurations = {g["model"]: g for g in stats["configurations"]}
    assert set(configurations) == {"counting-chat counting-1", "other-chat big-2"}
    assert configurations["other-chat big-2"]["entries"] == 3
    assert configurations["other-chat big-2"]["key"] == llm_string_hash(OTHER_LLM)
    assert configurations["counting-chat counting-1"]["newest"] == stats["newest"]
    assert stats["configuration_count"] == 2

    text = run("stats", filled, env=env)
    assert text.returncode == 0
    for expected in ("entries  5", "counting-chat counting-1", "(none)", "ns "):
        assert expected in text.stdout, text.stdout

    top = ok_json("stats", filled, "--top", "1", env=env)
    assert [g["key"] for g in top["namespaces"]] == [None, "ns"]  # none is extra
    assert len(top["configurations"]) == 1 and top["configurations_other"] == 2


def test_stats_of_other_indices(
    env: dict[str, str], admin: Elasticsearch, index_name: str
) -> None:
    store = ElasticsearchEmbeddingsCache(index_name, client=admin, namespace="t")
    store.mset([("k1", b"1"), ("k2", b"2")])
    admin.indices.refresh(index=index_name)
    stats = ok_json("stats", index_name, env=env)
    assert stats["kind"] == "embeddings cache"
    assert stats["entries"] == 2
    assert stats["namespaces"] == [
        {"key": "t", "entries": 2, "newest": stats["newest"], "model": None}
    ]
    assert stats["configurations"] == []
    theirs = f"{index_name}-theirs"
    admin.index(
        index=theirs,
        document={"llm_output": ["x"], "timestamp": "2026-01-01T10:00:00.123456"},
        refresh=True,
    )
    stats = ok_json("stats", theirs, env=env)
    assert stats["kind"] == "langchain-elasticsearch LLM cache"
    assert stats["oldest"] == "2026-01-01T10:00:00.123Z"


def test_stats_of_a_missing_index(env: dict[str, str], index_name: str) -> None:
    line = failure(run("stats", index_name, env=env))
    assert line == (
        f"langchain-es-cache: error: index_not_found_exception: "
        f"no such index [{index_name}]"
    )


# --- connection ----------------------------------------------------------------


def test_connection_errors(es_conn: es_server.Connection, index_name: str) -> None:
    line = failure(run("stats", index_name, env=environment(None)))
    assert "no cluster given" in line
    bad_key = environment(None, ES_URL=es_conn.url, ES_API_KEY="bm90OmEta2V5")
    assert "refused the credentials (401)" in failure(
        run("stats", index_name, env=bad_key)
    )
    nowhere = environment(None, ES_URL="http://127.0.0.1:9")
    assert "cannot connect" in failure(
        run("stats", index_name, "--timeout", "2", env=nowhere)
    )
    both = environment(None, ES_URL=es_conn.url, ES_CLOUD_ID="x:eA==")
    assert "both ES_URL and ES_CLOUD_ID" in failure(run("stats", "x", env=both))
    half = environment(None, ES_URL=es_conn.url)
    line = failure(run("stats", "x", "--user", "elastic", env=half))
    assert "user and password must be given together" in line


def test_flags_win_over_the_environment(
    es_conn: es_server.Connection, filled: str
) -> None:
    wrong = environment(None, ES_URL="http://127.0.0.1:9", ES_API_KEY="bm90OmEta2V5")
    assert es_conn.api_key is not None
    stats = ok_json(
        "stats", filled, "--url", es_conn.url, "--api-key", es_conn.api_key, env=wrong
    )
    assert stats["entries"] == 5
    # Flags given before the command work too.
    result = run(
        "--url", es_conn.url, "--api-key", es_conn.api_key, "stats", filled, env=wrong
    )
    assert result.returncode == 0, result.stderr
    if es_conn.user and es_conn.password:
        # A credential flag replaces every credential variable (the bad key).
        flags = ["--url", es_conn.url, "--user", es_conn.user]
        # `--password=...`: a generated password may begin with "-", which
        # argparse would take for a flag after a space.
        password = f"--password={es_conn.password}"
        result = run("stats", filled, *flags, password, env=wrong)
        assert result.returncode == 0, result.stderr
        basic = ok_json("stats", filled, env=environment(es_conn, basic=True))
        assert basic["entries"] == 5


def test_secrets_never_printed(es_conn: es_server.Connection, index_name: str) -> None:
    secret = "c2VjcmV0LWtleTpzZWNyZXQtdmFsdWU="
    env = environment(None, ES_URL=es_conn.url, ES_API_KEY=secret)
    for args in (["stats", index_name], ["check", index_name], ["clear", "x", "--yes"]):
        result = run(*args, env=env)
        assert result.returncode == 1
        assert secret not in result.stdout + result.stderr


# --- check ---------------------------------------------------------------------


def checks(result: subprocess.CompletedProcess[str]) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in json.loads(result.stdout)["checks"]}


def test_check(env: dict[str, str], filled: str, index_name: str) -> None:
    result = run("check", filled, "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert set(checks(result)) >= {
        "connection",
        "credentials",
        "index",
        "privilege read",
        "privilege write",
    }
    fresh = run("check", f"{index_name}-new", env=env)
    assert fresh.returncode == 0
    assert "does not exist yet" in fresh.stdout


def test_check_refuses_a_langchain_elasticsearch_index(
    env: dict[str, str], admin: Elasticsearch, index_name: str
) -> None:
    admin.index(index=index_name, document={"llm_output": ["x"]}, refresh=True)
    result = run("check", index_name, env=env)
    assert "migrate it" in failure(result)
    assert "FAIL" in result.stdout


@pytest.mark.parametrize(
    ("granted", "index_exists", "failing"),
    [
        (["read", "write"], True, set()),
        (["read", "view_index_metadata"], True, {"write"}),
        (["write"], True, {"read"}),
        (["read", "write"], False, {"create_index"}),
    ],
)
def test_check_fails_where_the_classes_check_does(
    es_conn: es_server.Connection,
    root: Elasticsearch,
    filled: str,
    granted: list[str],
    index_exists: bool,
    failing: set[str],
) -> None:
    """A key limited to `granted` on the index: the command line fails on the
    privileges the classes' check() names, and passes where check() passes."""
    index = filled if index_exists else f"{filled}-new"
    role = {"names": [f"{filled}*"], "privileges": granted}
    key = root.security.create_api_key(
        name=f"check-{filled}", role_descriptors={"r": {"indices": [role]}}
    )
    try:
        env = environment(None, ES_URL=es_conn.url, ES_API_KEY=key["encoded"])
        result = run("check", index, "--json", env=env)
        cache = ElasticsearchCache(index, es_url=es_conn.url, es_api_key=key["encoded"])
        try:
            if failing:
                with pytest.raises(CacheError, match="the cache cannot work") as info:
                    cache.check()
                for name in ("read", "write", "create_index"):
                    assert (f"'{name}'" in str(info.value)) is (name in failing)
            else:
                report = cache.check()
                held = {name for name, has in report.privileges.items() if has}
                assert held == set(granted)
        finally:
            cache.close()
    finally:
        root.security.invalidate_api_key(ids=[key["id"]])
    lines = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert lines["connection"]["ok"] and lines["credentials"]["ok"]
    assert {name for name, c in lines.items() if not c["ok"]} == {
        f"privilege {name}" for name in failing
    }
    for name, line in lines.items():
        if name.startswith("privilege "):
            has = name.removeprefix("privilege ") in granted
            assert line["detail"].startswith("missing") is not has, line
    if failing:
        (name,) = failing
        assert f"privilege {name}" in failure(result)
    else:
        assert result.returncode == 0, result.stderr
    if "view_index_metadata" in granted:
        assert lines["index"]["detail"] == "an index, LLM cache"
    elif index_exists:
        assert lines["index"]["detail"].startswith("not visible")
    else:
        assert lines["index"]["detail"].startswith("does not exist yet")


def test_check_reports_a_missing_index_needing_create_index_without_read(
    es_conn: es_server.Connection, root: Elasticsearch, filled: str
) -> None:
    """check() cannot see whether the index exists without `read`; the index's
    mapping can, and then `create_index` is needed too."""
    role = {"names": [f"{filled}*"], "privileges": ["write", "view_index_metadata"]}
    key = root.security.create_api_key(
        name=f"check-{filled}", role_descriptors={"r": {"indices": [role]}}
    )
    try:
        env = environment(None, ES_URL=es_conn.url, ES_API_KEY=key["encoded"])
        result = run("check", f"{filled}-new", "--json", env=env)
    finally:
        root.security.invalidate_api_key(ids=[key["id"]])
    lines = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert lines["index"]["detail"].startswith("does not exist yet")
    assert {name for name, c in lines.items() if not c["ok"]} == {
        "privilege read",
        "privilege create_index",
    }
    assert result.returncode == 1


def test_check_reports_an_error_it_does_not_expect(
    env: dict[str, str], admin: Elasticsearch, index_name: str
) -> None:
    """A closed index refuses check()'s read: a failing line of the report,
    printed as JSON like any other, not a traceback or a bare error."""
    admin.indices.create(index=index_name)
    admin.indices.close(index=index_name)
    result = run("check", index_name, "--json", env=env)
    assert result.returncode == 1
    lines = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert lines["connection"]["ok"] is True
    assert lines["check"]["ok"] is False
    assert "index_closed_exception" in lines["check"]["detail"]


def test_check_with_bad_credentials_or_no_cluster(
    es_conn: es_server.Connection, index_name: str
) -> None:
    bad = environment(None, ES_URL=es_conn.url, ES_API_KEY="bm90OmEta2V5")
    result = run("check", index_name, "--json", env=bad)
    assert result.returncode == 1
    assert checks(result) == {"connection": True, "credentials": False}
    nowhere = environment(None, ES_URL="http://127.0.0.1:9")
    result = run("check", index_name, "--json", "--timeout", "2", env=nowhere)
    assert result.returncode == 1
    assert checks(result) == {"connection": False}


# --- clear and purge-expired ---------------------------------------------------


def test_clear_asks_first_and_counts(
    env: dict[str, str], admin: Elasticsearch, filled: str
) -> None:
    refused = run("clear", filled, env=env)  # stdin is not a terminal
    assert "pass --yes" in failure(refused)
    assert count(admin, filled) == 5
    dry = ok_json("clear", filled, "--all-namespaces", "--dry-run", env=env)
    assert dry == {"index": filled, "matched": 5, "deleted": 0, "dry_run": True}
    assert count(admin, filled) == 5

    team = ok_json("clear", filled, "--metadata", '{"team": "b"}', "--yes", env=env)
    assert (team["matched"], team["deleted"]) == (3, 3)
    assert count(admin, filled) == 2  # namespace "ns" untouched
    scoped = ok_json(
        "clear",
        filled,
        "--namespace",
        "ns",
        "--llm-string-hash",
        llm_string_hash(OTHER_LLM),
        "--yes",
        env=env,
    )
    assert scoped["deleted"] == 2
    assert count(admin, filled) == 0
    text = run("clear", filled, "--yes", env=env)
    assert text.returncode == 0
    assert text.stdout.strip() == (
        f"deleted 0 entries from {filled} (entries without a namespace)"
    )


def test_clear_filters(env: dict[str, str], admin: Elasticsearch, filled: str) -> None:
    old = ok_json("clear", filled, "--older-than", "12h", "--yes", env=env)
    assert old["deleted"] == 1  # the day-old entry
    llm = ok_json(
        "clear", filled, "--all-namespaces", "--llm-string", OTHER_LLM, "--yes", env=env
    )
    assert llm["deleted"] == 3
    assert count(admin, filled) == 1
    assert claims(admin, filled) == 1


def test_clear_arguments_are_checked(env: dict[str, str], filled: str) -> None:
    for args in (
        ["--metadata", "[1]"],
        ["--metadata", "{bad"],
        ["--older-than", "soon"],
        ["--namespace", "ns", "--all-namespaces"],
    ):
        result = run("clear", filled, *args, "--yes", env=env)
        assert result.returncode == 2, args
        assert "error:" in result.stderr.strip().splitlines()[-1]


def test_confirmation_on_a_terminal(
    env: dict[str, str], admin: Elasticsearch, filled: str
) -> None:
    for answer, status, left in ((b"n\n", 1, 5), (b"y\n", 0, 2)):
        leader, follower = pty.openpty()
        try:
            os.write(leader, answer)
            result = run("clear", filled, env=env, stdin=follower)
        finally:
            os.close(follower)
            os.close(leader)
        assert result.returncode == status, result.stderr
        assert "Delete 3 entries from" in result.stderr
        assert count(admin, filled) == left
        if status:
            assert "aborted: nothing deleted" in result.stderr


def test_purge_expired(env: dict[str, str], admin: Elasticsearch, filled: str) -> None:
    dry = ok_json("purge-expired", filled, "--ttl", "12h", "--dry-run", env=env)
    assert dry["matched"] == 1  # only the day-old entry, without a namespace
    done = ok_json("purge-expired", filled, "--ttl", "12h", "--yes", env=env)
    assert done["deleted"] == 1
    every = ok_json(
        "purge-expired", filled, "--ttl", "1s", "--all-namespaces", "--yes", env=env
    )
    assert every["deleted"] == 4
    assert count(admin, filled) == 0
    assert claims(admin, filled) == 1  # claims expire on their own
    result = run("purge-expired", filled, env=env)
    assert result.returncode == 2 and "--ttl" in result.stderr


def test_clear_of_a_missing_index_fails(env: dict[str, str], index_name: str) -> None:
    assert "no such index" in failure(run("clear", index_name, "--yes", env=env))
