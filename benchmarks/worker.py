"""Runs measurements for the driver, in whichever environment it is started from.

Protocol: one JSON object per line on stdin (``{"cmd": ..., ...}``), one JSON
object per line on the original stdout (``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``). Anything else printed goes to stderr, so a
stray print never corrupts an answer. The cluster comes from ES_URL and
ES_USER/ES_PASSWORD or ES_API_KEY.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import traceback
from importlib import metadata
from typing import Any

import workload

PACKAGES = [
    "elasticsearch",
    "elastic-transport",
    "langchain-core",
    "langchain-es-cache",
    "langchain-elasticsearch",
    "langchain-redis",
    "redis",
]


def versions() -> dict[str, Any]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "packages": found}


def handle(request: dict[str, Any]) -> Any:
    cmd = request["cmd"]
    if cmd == "versions":
        return versions()
    spec = workload.SPECS.get(request.get("contender", ""))
    if cmd == "round":
        assert spec is not None
        return workload.measure_round(
            spec,
            request["index"],
            request["tag"],
            request["n"],
            request["cap_s"],
            request["e2e_n"],
            request.get("redis_url"),
        )
    if cmd == "paired":
        return workload.measure_paired(
            request["index"], request["tag"], request["n"], request["cap_s"]
        )
    if cmd == "growth":
        assert spec is not None
        return workload.measure_growth(
            spec,
            request["index"],
            request["tag"],
            request["probes"],
            request["n"],
            request["write"],
        )
    if cmd == "clear":
        assert spec is not None
        return workload.measure_clear(spec, request["index"])
    if cmd == "burst_warm":
        import burst

        return burst.warm(request["contender"])
    if cmd == "burst_prepare":
        import asyncio

        import burst

        return asyncio.run(burst.prepare(request["contender"], request["index"]))
    if cmd == "burst":
        import asyncio

        import burst

        return asyncio.run(
            burst.run_burst(
                request["contender"],
                request["index"],
                request["tag"],
                request["start_at"],
                request.get("redis_url"),
            )
        )
    if cmd == "burst_requests":
        import burst

        return burst.measure_requests(request["index"], request.get("n", 200))
    if cmd == "profile":
        return workload.profile_lookup_hit(request["index"], request["n"])
    if cmd == "profile_async":
        return workload.profile_async_lookup_hit(request["index"], request["n"])
    raise ValueError(f"unknown command {cmd!r}")


def main() -> None:
    workload.count_requests()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("cmd") == "quit":
            break
        try:
            answer = {"ok": True, "result": handle(request)}
        except Exception as exc:
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
