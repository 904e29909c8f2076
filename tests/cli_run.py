"""Running the command line in a subprocess, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from utils import es_server

COMMAND = [sys.executable, "-m", "langchain_es_cache"]


def environment(
    connection: es_server.Connection | None, *, basic: bool = False, **extra: str
) -> dict[str, str]:
    """This process's environment without ES_*, plus the cluster's settings.

    ES_API_KEY by default; ES_USER/ES_PASSWORD with `basic`.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    if connection is not None:
        env["ES_URL"] = connection.url
        if basic:
            assert connection.user and connection.password
            env["ES_USER"], env["ES_PASSWORD"] = connection.user, connection.password
        else:
            assert connection.api_key
            env["ES_API_KEY"] = connection.api_key
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str], stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m langchain_es_cache ARGS``; never raises on its exit status."""
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ok_json(*args: str, env: dict[str, str]) -> Any:
    """Run with ``--json``; check it succeeded; return the parsed output."""
    result = run(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def failure(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """Check the run failed with `status` and one line on stderr; return it."""
    assert result.returncode == status, (
        result.returncode,
        result.stdout,
        result.stderr,
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
