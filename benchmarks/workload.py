"""The data, the contenders and the measurement, identical in every environment.

Imported by ``worker.py`` both in the bench environment (this library, the floor,
Redis, in-memory) and in the reference environment (langchain-elasticsearch,
which pins client 8). Each contender's package is imported only when that
contender is built, so either environment can load this module.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration

# --- realistic data ------------------------------------------------------------

_TEXT = (
    "the cache answers an identical prompt from elasticsearch instead of the model "
    "which saves latency tokens and money for every process in the fleet while "
    "keeping the generation with its message metadata exactly as it was produced"
)
_WORDS = _TEXT.split()

SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer precisely and cite the relevant part of "
    "the documentation when you can."
)

LLM_STRING = (
    '{"lc": 1, "type": "constructor", "id": ["langchain", "chat_models", "openai", '
    '"ChatOpenAI"], "kwargs": {"model_name": "gpt-4o-mini", "temperature": 0.2, '
    '"max_retries": 2, "openai_api_key": {"lc": 1, "type": "secret", "id": '
    '["OPENAI_API_KEY"]}, "max_tokens": 1024, "n": 1}, "name": "ChatOpenAI"}---'
    "[('_type', 'openai-chat'), ('model', 'gpt-4o-mini'), ('model_name', "
    "'gpt-4o-mini'), ('n', 1), ('stop', None), ('stream', False), "
    "('temperature', 0.2)]"
)
"""Shaped like what ``ChatOpenAI._get_llm_string()`` returns."""


def answer_text(size: int = 1024, seed: int = 7) -> str:
    """About `size` characters of English-like text."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


ANSWER = answer_text()


def generation(i: int = 0) -> ChatGeneration:
    """A chat generation of ~1 KB with the metadata a real chat model attaches."""
    return ChatGeneration(
        message=AIMessage(
            content=ANSWER,
            id=f"chatcmpl-{i:012d}",
            response_metadata={
                "token_usage": {
                    "completion_tokens": 212,
                    "prompt_tokens": 48,
                    "total_tokens": 260,
                },
                "model_name": "gpt-4o-mini-2024-07-18",
                "system_fingerprint": "fp_0ba0d124f1",
                "finish_reason": "stop",
                "logprobs": None,
            },
            usage_metadata={
                "input_tokens": 48,
                "output_tokens": 212,
                "total_tokens": 260,
            },
        ),
        generation_info={"finish_reason": "stop", "logprobs": None},
    )


def prompt(tag: str, i: int) -> str:
    """A serialized message list, as LangChain builds a chat model's cache prompt."""
    return dumps(
        [
            SystemMessage(content=SYSTEM_PROMPT),
            HumanMessage(
                content=f"Question {tag}-{i}: how does the cache handle request {i}?"
            ),
        ]
    )


def question(tag: str, i: int) -> str:
    """The end-to-end user input for `prompt`-like entries."""
    return f"Question {tag}-{i}: how does the cache handle request {i}?"


def distinct_prompt(tag: str, i: int) -> str:
    """A prompt sharing no word with any `prompt`: a semantic-cache miss.

    Without the system message too, which would otherwise make every prompt
    look alike to a bag of words.
    """
    rng = random.Random(f"{tag}-{i}")
    words = " ".join(f"w{rng.randrange(10**6)}" for _ in range(20))
    return dumps([HumanMessage(content=words)])


EMBEDDING_DIMS = 256


class HashEmbeddings(Embeddings):
    """Hashed bag of words into 256 dimensions, L2-normalized: microseconds a call.

    Deterministic and cheap, so that the semantic contenders measure
    Elasticsearch's kNN search and the library, not an embedding model; a real
    model's cost per lookup and update comes on top.
    """

    def embed_query(self, text: str) -> list[float]:
        vector = [0.0] * EMBEDDING_DIMS
        for word in text.lower().split():
            h = zlib.crc32(word.encode())
            vector[h % EMBEDDING_DIMS] += 1.0 if h & 0x100000 else -1.0
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    async def aembed_query(self, text: str) -> list[float]:
        # No thread hop (the default runs embed_query in an executor).
        return self.embed_query(text)


# --- contenders ----------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A contender: which implementation, in which environment, how concurrent."""

    name: str
    label: str
    env: str  # "bench" or "reference"
    concurrency: int  # 0: sync; >= 1: async with that many tasks in flight
    e2e: bool = True


CONTENDERS: list[Spec] = [
    Spec("floor", "elasticsearch-py get/index (floor)", "bench", 0, e2e=False),
    Spec("ours-sync", "ours ElasticsearchCache", "bench", 0),
    Spec("ours-async-1", "ours AsyncElasticsearchCache c=1", "bench", 1),
    Spec("ours-async-16", "ours AsyncElasticsearchCache c=16", "bench", 16, False),
    Spec("ours-async-64", "ours AsyncElasticsearchCache c=64", "bench", 64, False),
    Spec("semantic-sync", "ours ElasticsearchSemanticCache", "bench", 0, False),
    Spec(
        "semantic-async-1",
        "ours AsyncElasticsearchSemanticCache c=1",
        "bench",
        1,
        False,
    ),
    Spec("ref-sync", "langchain-elasticsearch ElasticsearchCache", "reference", 0),
    Spec("ref-async-1", "langchain-elasticsearch Async c=1", "reference", 1),
    Spec("ref-async-64", "langchain-elasticsearch Async c=64", "reference", 64, False),
    Spec("redis", "langchain-redis RedisCache", "bench", 0),
    Spec("inmemory", "langchain-core InMemoryCache", "bench", 0),
]
SPECS = {spec.name: spec for spec in CONTENDERS}


def es_settings() -> dict[str, Any]:
    """Connection keyword arguments for the caches, from the environment."""
    settings: dict[str, Any] = {"es_url": os.environ["ES_URL"]}
    if os.environ.get("ES_API_KEY"):
        settings["es_api_key"] = os.environ["ES_API_KEY"]
    else:
        settings["es_user"] = os.environ.get("ES_USER", "elastic")
        settings["es_password"] = os.environ["ES_PASSWORD"]
    return settings


def raw_client(asynchronous: bool = False, cls: Any = None) -> Any:
    """A plain elasticsearch-py client for the cluster in the environment (of
    `cls`, a client class of the right kind, if given)."""
    import elasticsearch

    kwargs: dict[str, Any] = {"hosts": [os.environ["ES_URL"]]}
    if os.environ.get("ES_API_KEY"):
        kwargs["api_key"] = os.environ["ES_API_KEY"]
    else:
        kwargs["basic_auth"] = (
            os.environ.get("ES_USER", "elastic"),
            os.environ["ES_PASSWORD"],
        )
    if cls is None:
        cls = (
            elasticsearch.AsyncElasticsearch
            if asynchronous
            else elasticsearch.Elasticsearch
        )
    return cls(request_timeout=120, **kwargs)


class Floor:
    """elasticsearch-py's own ``get`` and ``index`` of this library's documents.

    Ids and documents are computed before timing: only the client is measured.
    """

    def __init__(self, index: str) -> None:
        from elasticsearch import NotFoundError

        from langchain_es_cache import ElasticsearchCache
        from langchain_es_cache._common import keys, mappings

        self.index = index
        self._not_found = NotFoundError
        self._keys, self._mappings = keys, mappings
        self.client = raw_client()
        # Same mapping and documents as ours: let our class create the index.
        self._builder = ElasticsearchCache(index, client=self.client)
        self._builder.is_alias()
        self._prepared: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def prepare(self, items: Sequence[tuple[str, str, list[Any]]]) -> None:
        for p, llm, gens in items:
            self._prepared[(p, llm)] = (
                self._keys.llm_key(p, llm),
                self._builder.build_document(p, llm, gens),
            )

    def lookup(self, p: str, llm: str) -> Any:
        key = self._prepared.get((p, llm), (None,))[0] or self._keys.llm_key(p, llm)
        try:
            doc = self.client.get(
                index=self.index, id=key, source_includes=self._mappings.LOOKUP_FIELDS
            )
        except self._not_found:
            return None
        return doc["_source"]

    def update(self, p: str, llm: str, gens: Any) -> None:
        key, document = self._prepared[(p, llm)]
        self.client.index(index=self.index, id=key, document=document)

    def close(self) -> None:
        self.client.close()


class Contender:
    """One implementation set up against its store: sync or async methods."""

    def __init__(self, spec: Spec, index: str, redis_url: str | None) -> None:
        self.spec = spec
        self.index = index
        self.cache: Any = None
        self.floor: Floor | None = None
        self.is_async = spec.concurrency > 0
        name = spec.name
        if name == "floor":
            self.floor = Floor(index)
        elif name.startswith("ours-"):
            from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache

            cls = AsyncElasticsearchCache if self.is_async else ElasticsearchCache
            self.cache = cls(index, **es_settings())
        elif name.startswith("semantic-"):
            from langchain_es_cache import (
                AsyncElasticsearchSemanticCache,
                ElasticsearchSemanticCache,
            )

            scls = (
                AsyncElasticsearchSemanticCache
                if self.is_async
                else ElasticsearchSemanticCache
            )
            self.cache = scls(
                index,
                embedding=HashEmbeddings(),
                dimensions=EMBEDDING_DIMS,
                **es_settings(),
            )
        elif name.startswith("ref-"):
            import langchain_elasticsearch as ref

            cls = (
                ref.AsyncElasticsearchCache if self.is_async else ref.ElasticsearchCache
            )
            # A client of our own: the one langchain-elasticsearch builds from a
            # URL first calls GET /, which the test server lacks.
            self.cache = cls(index, client=raw_client(self.is_async))
        elif name == "redis":
            from langchain_redis import RedisCache

            self.cache = RedisCache(redis_url=redis_url, prefix=index)
        elif name == "inmemory":
            from langchain_core.caches import InMemoryCache

            self.cache = InMemoryCache()
        else:
            raise ValueError(f"unknown contender {name}")

    @property
    def uses_es(self) -> bool:
        return self.spec.name not in ("redis", "inmemory")

    @property
    def semantic(self) -> bool:
        return self.spec.name.startswith("semantic-")

    # sync -------------------------------------------------------------------

    def lookup(self, p: str, llm: str) -> Any:
        if self.floor is not None:
            return self.floor.lookup(p, llm)
        return self.cache.lookup(p, llm)

    def update(self, p: str, llm: str, gens: Any) -> None:
        if self.floor is not None:
            self.floor.update(p, llm, gens)
        else:
            self.cache.update(p, llm, gens)

    # async ------------------------------------------------------------------

    async def alookup(self, p: str, llm: str) -> Any:
        return await self.cache.alookup(p, llm)

    async def aupdate(self, p: str, llm: str, gens: Any) -> None:
        await self.cache.aupdate(p, llm, gens)

    async def ensure_ready(self) -> None:
        """Create the index before timing, so no contender's first op pays for it."""
        if self.uses_es:
            await self.cache.is_alias()

    def ensure_ready_sync(self) -> None:
        if self.uses_es and self.floor is None:
            self.cache.is_alias()

    async def aclose(self) -> None:
        if self.spec.name.startswith(("ours-async", "semantic-async")):
            await self.cache.aclose()
        elif self.spec.name.startswith("ref-async"):
            await self.cache._es_client.close()  # the client we passed

    def close(self) -> None:
        if self.floor is not None:
            self.floor.close()
        elif self.spec.name in ("ours-sync", "semantic-sync"):
            self.cache.close()
        elif self.spec.name == "ref-sync":
            self.cache._es_client.close()


# --- measurement ---------------------------------------------------------------

SENT = [0]
"""HTTP requests sent to Elasticsearch by any client of this process so far."""


def count_requests() -> None:
    """Count every request elastic-transport sends (`SENT`), in either
    environment: both clients, 8 and 9, send through it."""
    import elastic_transport

    for cls in (elastic_transport.Transport, elastic_transport.AsyncTransport):
        # Looked up on the class itself: AsyncTransport inherits Transport's.
        if cls.__dict__.get("_bench_counted", False):
            continue
        original = cls.perform_request

        if cls is elastic_transport.AsyncTransport:

            async def counted_async(
                self: Any, *args: Any, _original: Any = original, **kwargs: Any
            ) -> Any:
                SENT[0] += 1
                return await _original(self, *args, **kwargs)

            cls.perform_request = counted_async  # type: ignore[method-assign]
        else:

            def counted(
                self: Any, *args: Any, _original: Any = original, **kwargs: Any
            ) -> Any:
                SENT[0] += 1
                return _original(self, *args, **kwargs)

            cls.perform_request = counted  # type: ignore[method-assign]
        cls._bench_counted = True  # type: ignore[attr-defined]


def summarize(
    latencies_ns: list[int], wall_s: float, requests: int | None = None
) -> dict[str, Any]:
    """Throughput and latency percentiles (ms) of one timed phase, and the
    requests it sent."""
    n = len(latencies_ns)
    ordered = sorted(latencies_ns)

    def pct(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1e6 if n else float("nan")

    return {
        "ops": n,
        "seconds": wall_s,
        "ops_per_s": n / wall_s if wall_s > 0 else float("nan"),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(ordered) / 1e6 if n else float("nan"),
        "requests": requests,
    }


def run_sync(
    op: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    cap_s: float,
    check: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Call `op(*item)` for each item, one at a time, for at most `cap_s` seconds."""
    latencies: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    sent = SENT[0]
    start = clock()
    deadline = start + int(cap_s * 1e9)
    for item in items:
        t0 = clock()
        result = op(*item)
        t1 = clock()
        latencies.append(t1 - t0)
        if check is not None:
            check(result)
        if t1 > deadline:
            break
    return summarize(latencies, (clock() - start) / 1e9, SENT[0] - sent)


async def run_async(
    op: Callable[..., Awaitable[Any]],
    items: Sequence[tuple[Any, ...]],
    concurrency: int,
    cap_s: float,
    check: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run `op(*item)` with `concurrency` tasks in flight, for at most `cap_s`."""
    latencies: list[int] = []
    clock = time.perf_counter_ns
    iterator = iter(items)
    gc.collect()
    sent = SENT[0]
    start = clock()
    deadline = start + int(cap_s * 1e9)

    async def worker() -> None:
        for item in iterator:
            t0 = clock()
            result = await op(*item)
            t1 = clock()
            latencies.append(t1 - t0)
            if check is not None:
                check(result)
            if t1 > deadline:
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(latencies, (clock() - start) / 1e9, SENT[0] - sent)


def expect_hit(result: Any) -> None:
    if result is None:
        raise AssertionError("a lookup that should hit missed")


def expect_miss(result: Any) -> None:
    if result is not None:
        raise AssertionError("a lookup that should miss hit")


def refresh(index: str) -> None:
    """Make every write searchable and durable, then let the node settle.

    The flush and the merge to one segment keep translog and segment work left
    by a write phase out of the lookups timed next, whichever contender wrote.
    """
    client = raw_client()
    try:
        client.indices.refresh(index=index)
        client.indices.flush(index=index)
        # One segment for everyone: otherwise how many segments a lookup
        # searches, and whether a merge runs during it, depend on how many
        # rounds and writes the contender's index has seen.
        client.indices.forcemerge(index=index, max_num_segments=1)
        client.indices.refresh(index=index)
    finally:
        client.close()
    time.sleep(0.5)


def measure_round(
    spec: Spec,
    index: str,
    tag: str,
    n: int,
    cap_s: float,
    e2e_n: int,
    redis_url: str | None,
) -> dict[str, Any]:
    """Update n fresh entries, look them up (hit), look up n unseen (miss), e2e."""
    contender = Contender(spec, index, redis_url)
    gens = [generation()]
    written = [(prompt(tag, i), LLM_STRING, gens) for i in range(n)]
    # A semantic miss must be a prompt unlike any stored one, not a filtered-out
    # model: the same kNN search, finding nothing above the threshold.
    miss_prompt = distinct_prompt if contender.semantic else prompt
    unseen = [(miss_prompt(tag + "-miss", i), LLM_STRING) for i in range(n)]
    if contender.floor is not None:
        contender.floor.prepare(written)
    out: dict[str, Any] = {}
    if contender.semantic and not contender.is_async:
        out["embed_query"] = embedding_cost(written)
    if contender.is_async:
        out = asyncio.run(_measure_async(contender, written, unseen, cap_s, e2e_n, tag))
        return out
    try:
        contender.ensure_ready_sync()
        run_sync(contender.lookup, warm_up(tag, n), cap_s)
        out["update"] = run_sync(contender.update, written, cap_s)
        done = written[: out["update"]["ops"]]
        if contender.uses_es:
            refresh(index)
        hits = [(p, llm) for p, llm, _ in _cycle(done, n)]
        out["lookup_hit"] = run_sync(contender.lookup, hits, cap_s, expect_hit)
        out["lookup_miss"] = run_sync(contender.lookup, unseen, cap_s, expect_miss)
        if spec.e2e:
            out["e2e_invoke"] = _e2e_sync(contender, tag, e2e_n)
    finally:
        contender.close()
    return out


async def _measure_async(
    contender: Contender,
    written: list[tuple[str, str, list[Any]]],
    unseen: list[tuple[str, str]],
    cap_s: float,
    e2e_n: int,
    tag: str,
) -> dict[str, Any]:
    c = contender.spec.concurrency
    out: dict[str, Any] = {}
    try:
        await contender.ensure_ready()
        await run_async(contender.alookup, warm_up(tag, len(written)), c, cap_s)
        out["update"] = await run_async(contender.aupdate, written, c, cap_s)
        done = written[: out["update"]["ops"]]
        refresh(contender.index)
        hits = [(p, llm) for p, llm, _ in _cycle(done, len(written))]
        out["lookup_hit"] = await run_async(
            contender.alookup, hits, c, cap_s, expect_hit
        )
        out["lookup_miss"] = await run_async(
            contender.alookup, unseen, c, cap_s, expect_miss
        )
        if contender.spec.e2e:
            out["e2e_invoke"] = await _e2e_async(contender, tag, e2e_n)
    finally:
        await contender.aclose()
    return out


def embedding_cost(written: Sequence[tuple[str, str, list[Any]]]) -> dict[str, Any]:
    """What `HashEmbeddings` costs a call, inside every semantic lookup and update."""

    embedding = HashEmbeddings()
    # Imported here: the reference environment has no langchain_es_cache.
    from langchain_es_cache._common.prompts import prompt_text

    texts = [(prompt_text(p),) for p, _, _ in written]
    return run_sync(embedding.embed_query, texts, 2.0)


def measure_paired(index: str, tag: str, n: int, cap_s: float) -> dict[str, Any]:
    """The floor and ours reading the same documents in one index, interleaved.

    Ours writes the entries once; the floor's ``get`` and our ``lookup`` then
    take turns in blocks of 25 operations (which goes first alternates), so
    both see the same documents, segments, connection state and machine load
    at the same moments. Hits, then misses.
    """
    ours = Contender(SPECS["ours-sync"], index, None)
    floor = Contender(SPECS["floor"], index, None)
    gens = [generation()]
    written = [(prompt(tag, i), LLM_STRING, gens) for i in range(n)]
    unseen = [(prompt(tag + "-miss", i), LLM_STRING) for i in range(n)]
    assert floor.floor is not None
    floor.floor.prepare(written)
    out: dict[str, Any] = {"floor": {}, "ours-sync": {}}
    try:
        ours.ensure_ready_sync()
        for c in (floor, ours):
            run_sync(c.lookup, warm_up(tag, n), cap_s / 2)
        done = 0
        deadline = time.monotonic() + cap_s
        for item in written:
            ours.update(*item)
            done += 1
            if time.monotonic() > deadline:
                break
        refresh(index)
        hits = [(p, llm) for p, llm, _ in _cycle(written[:done], n)]
        for phase, items, check in (
            ("lookup_hit", hits, expect_hit),
            ("lookup_miss", unseen, expect_miss),
        ):
            lat: dict[str, list[int]] = {"floor": [], "ours-sync": []}
            busy = {"floor": 0, "ours-sync": 0}
            clock = time.perf_counter_ns
            gc.collect()
            block = 25
            for b, first in enumerate(range(0, len(items), block)):
                pair = [("floor", floor), ("ours-sync", ours)]
                for name, c in pair if b % 2 == 0 else pair[::-1]:
                    for item in items[first : first + block]:
                        t0 = clock()
                        result = c.lookup(*item)
                        t1 = clock()
                        lat[name].append(t1 - t0)
                        busy[name] += t1 - t0
                        check(result)
            for name in lat:
                out[name][phase] = summarize(lat[name], busy[name] / 1e9)
    finally:
        floor.close()
        ours.close()
    return out


def warm_up(tag: str, n: int) -> list[tuple[str, str]]:
    """Untimed lookups (misses) that warm connections and code paths first."""
    return [(prompt(tag + "-warm", i), LLM_STRING) for i in range(max(20, n // 10))]


def _cycle(items: Sequence[Any], n: int) -> list[Any]:
    if not items:
        raise AssertionError("no entry was written")
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    return [shuffled[i % len(shuffled)] for i in range(n)]


def _model(contender: Contender) -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=[ANSWER], cache=contender.cache)


def _e2e_sync(contender: Contender, tag: str, n: int) -> dict[str, Any]:
    """p50 of ``model.invoke`` answered from the cache (filled by a first pass)."""
    model = _model(contender)
    inputs = [(question(tag + "-e2e", i),) for i in range(n)]
    for (text,) in inputs:
        model.invoke(text)
    if contender.uses_es:
        refresh(contender.index)

    def invoke(text: str) -> Any:
        return model.invoke(text)

    return run_sync(invoke, inputs, 60.0)


async def _e2e_async(contender: Contender, tag: str, n: int) -> dict[str, Any]:
    model = _model(contender)
    inputs = [(question(tag + "-e2e", i),) for i in range(n)]
    for (text,) in inputs:
        await model.ainvoke(text)
    refresh(contender.index)
    return await run_async(model.ainvoke, inputs, 1, 60.0)


def measure_growth(
    spec: Spec, index: str, tag: str, probes: int, n: int, write: bool
) -> dict[str, Any]:
    """Lookup-hit latency in a big index: `probes` entries written by the contender."""
    contender = Contender(spec, index, None)
    gens = [generation()]
    written = [(prompt(tag, i), LLM_STRING, gens) for i in range(probes)]
    if contender.floor is not None:
        contender.floor.prepare(written)
    try:
        if write:
            for item in written:
                contender.update(*item)
            refresh(index)
        hits = [(p, llm) for p, llm, _ in _cycle(written, n)]
        return run_sync(contender.lookup, hits, 30.0, expect_hit)
    finally:
        contender.close()


def measure_clear(spec: Spec, index: str) -> dict[str, Any]:
    """Seconds for the contender's ``clear`` of everything in `index`."""
    contender = Contender(spec, index, None)
    try:
        start = time.perf_counter()
        if contender.is_async:

            async def go() -> None:
                try:
                    await contender.cache.aclear()
                finally:
                    await contender.aclose()

            asyncio.run(go())
        else:
            contender.cache.clear()
        return {"seconds": time.perf_counter() - start}
    finally:
        if not contender.is_async:
            contender.close()


def profile_lookup_hit(index: str, n: int) -> str:
    """pyinstrument's text profile of this library's sync lookup-hit path."""
    from pyinstrument import Profiler

    contender = Contender(SPECS["ours-sync"], index, None)
    gens = [generation()]
    written = [(prompt("profile", i), LLM_STRING, gens) for i in range(200)]
    try:
        for item in written:
            contender.update(*item)
        refresh(index)
        hits = [(p, llm) for p, llm, _ in _cycle(written, n)]
        profiler = Profiler(interval=0.0002)
        profiler.start()
        for p, llm in hits:
            contender.lookup(p, llm)
        profiler.stop()
        return str(profiler.output_text(unicode=False, color=False, show_all=False))
    finally:
        contender.close()


def profile_async_lookup_hit(index: str, n: int, concurrency: int = 64) -> str:
    """pyinstrument's text profile of this library's async lookup hits with
    `concurrency` in flight (the coalesced path)."""
    from pyinstrument import Profiler

    contender = Contender(SPECS[f"ours-async-{concurrency}"], index, None)
    gens = [generation()]
    written = [(prompt("profile-async", i), LLM_STRING, gens) for i in range(200)]

    async def go() -> str:
        try:
            await contender.ensure_ready()
            for item in written:
                await contender.aupdate(*item)
            refresh(index)
            hits = [(p, llm) for p, llm, _ in _cycle(written, n)]
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            await run_async(contender.alookup, hits, concurrency, 30.0, expect_hit)
            profiler.stop()
            return str(profiler.output_text(unicode=False, color=False, show_all=False))
        finally:
            await contender.aclose()

    return asyncio.run(go())
