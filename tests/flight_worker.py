"""A process of its own for the cross-process single_flight tests.

    python -m tests.flight_worker '{"mode": "burst", ...}'

Connects with ES_URL and ES_API_KEY (or ES_USER and ES_PASSWORD). ``burst``:
builds its cache, prints ``ready``, waits for a line on stdin, then asks one
prompt from `callers` tasks (``kind`` async) or threads (sync) through a slow
chat model and prints a JSON report. ``claim``: asks the prompt through a
model that never answers, prints ``asking`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_es_cache import AsyncElasticsearchCache, ElasticsearchCache
from tests.models import SlowChatModel


def settings() -> dict[str, Any]:
    found: dict[str, Any] = {"es_url": os.environ["ES_URL"]}
    if os.environ.get("ES_API_KEY"):
        found["es_api_key"] = os.environ["ES_API_KEY"]
    else:
        found["es_user"] = os.environ["ES_USER"]
        found["es_password"] = os.environ["ES_PASSWORD"]
    return found


def say(line: str) -> None:
    print(line, flush=True)


async def burst_async(args: dict[str, Any]) -> dict[str, Any]:
    async with AsyncElasticsearchCache(
        args["index"], single_flight=args["single_flight"], **settings()
    ) as cache:
        await cache.is_alias()
        model = SlowChatModel(cache=cache, delay=args["delay"])
        say("ready")
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(
            *(model.ainvoke(args["prompt"]) for _ in range(args["callers"]))
        )
        stats = cache.stats()
    return {
        "calls": model.calls,
        "answers": [r.content for r in results],
        "coalesced": stats.coalesced,
    }


def burst_sync(args: dict[str, Any]) -> dict[str, Any]:
    with ElasticsearchCache(
        args["index"], single_flight=args["single_flight"], **settings()
    ) as cache:
        cache.is_alias()
        model = SlowChatModel(cache=cache, delay=args["delay"])
        say("ready")
        sys.stdin.readline()
        with ThreadPoolExecutor(args["callers"]) as pool:
            results = list(
                pool.map(lambda _: model.invoke(args["prompt"]), range(args["callers"]))
            )
        stats = cache.stats()
    return {
        "calls": model.calls,
        "answers": [r.content for r in results],
        "coalesced": stats.coalesced,
    }


def claim(args: dict[str, Any]) -> None:
    cache = ElasticsearchCache(
        args["index"], single_flight=args["single_flight"], **settings()
    )
    model = SlowChatModel(cache=cache, delay=3600)
    threading.Thread(target=model.invoke, args=(args["prompt"],), daemon=True).start()
    say("asking")
    time.sleep(3600)


def main() -> None:
    args = json.loads(sys.argv[1])
    if args["mode"] == "claim":
        claim(args)
    elif args["kind"] == "async":
        say(json.dumps(asyncio.run(burst_async(args))))
    else:
        say(json.dumps(burst_sync(args)))


if __name__ == "__main__":
    main()
