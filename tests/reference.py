"""langchain-elasticsearch in an environment of its own, to write reference documents.

It pins elasticsearch client 8, so it cannot share the tests' environment. The
environment is built once per set of versions, outside the repository (next to
the Elasticsearch servers `utils/es_server.py` caches), and reused by later
runs: the first build takes about 30 seconds. Its langchain-core and
langchain-classic (or langchain, before langchain-core 1.0) are the tests' own
versions, so that both sides serialize prompts and hash keys alike; with
langchain-core 0.3 (the lower bound, `nox -s compat`) that means
langchain-elasticsearch 0.3, which writes the same documents.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from utils import es_server


def _core_major() -> int:
    return int(metadata.version("langchain-core").split(".")[0])


LANGCHAIN_ELASTICSEARCH = "1.0.0" if _core_major() >= 1 else "0.3.2"
"""The release whose documents the migration is tested against: the newest,
or the newest for langchain-core 0.3."""

EMBEDDINGS_PACKAGE = "langchain-classic" if _core_major() >= 1 else "langchain"
"""Where CacheBackedEmbeddings comes from for this langchain-core."""

WRITER = Path(__file__).with_name("reference_writer.py")
ROOT = Path(__file__).resolve().parent.parent


def _requirements() -> list[str]:
    return [
        f"langchain-elasticsearch=={LANGCHAIN_ELASTICSEARCH}",
        f"langchain-core=={metadata.version('langchain-core')}",
        f"{EMBEDDINGS_PACKAGE}=={metadata.version(EMBEDDINGS_PACKAGE)}",
    ]


def environment_dir() -> Path:
    """Where the environment for these versions lives (built or not)."""
    key = "-".join(
        [
            f"lce{LANGCHAIN_ELASTICSEARCH}",
            f"core{metadata.version('langchain-core')}",
            f"{EMBEDDINGS_PACKAGE}{metadata.version(EMBEDDINGS_PACKAGE)}",
            f"py{platform.python_version()}",
        ]
    )
    return es_server.cache_dir() / "reference-envs" / key


def python() -> Path:
    """The environment's Python, building the environment first if needed."""
    home = environment_dir()
    if _usable(home):
        return home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"{home.name}.lock").open("a") as lock:
        # Several test runs on one machine build it once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(home):
            _build(home)
    return home / "bin" / "python"


def _usable(home: Path) -> bool:
    """Built, and its interpreter still there: a venv's Python links to the
    interpreter it was made from, which may be gone since."""
    return (home / "ready").is_file() and (home / "bin" / "python").exists()


def _base_python() -> str:
    """The installed interpreter behind this one: a venv made from the tests'
    own venv would break when that venv is deleted."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix) / "bin" / f"python{version}"
    return str(base) if base.exists() else sys.executable


def _build(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    # venv's interpreter path is absolute: build in place, marked ready at the end.
    subprocess.run([_base_python(), "-m", "venv", str(home)], check=True)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q"]
    run = subprocess.run(
        [*pip, *_requirements()], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise RuntimeError(
            "could not build the langchain-elasticsearch environment: "
            f"{run.stderr.strip()[-2000:]}"
        )
    (home / "ready").write_text(json.dumps(_requirements()))


def write(connection: es_server.Connection, request: dict[str, Any], tz: str) -> Any:
    """Run `reference_writer.py` with `request` in the reference environment.

    `tz` is the writer's local time zone (a POSIX ``TZ`` value), which is what
    langchain-elasticsearch's naive timestamps are in.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ES_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "TZ": tz,
            "PYTHONPATH": str(ROOT),
            "REFERENCE_CONNECTION": json.dumps(
                {
                    "url": connection.url,
                    "api_key": connection.api_key,
                    "user": connection.user,
                    "password": connection.password,
                }
            ),
        }
    )
    with tempfile.TemporaryDirectory(prefix="reference-writer-") as scratch:
        run = subprocess.run(
            [str(python()), str(WRITER)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=env,
            cwd=scratch,
            check=False,
        )
    if run.returncode != 0:
        raise RuntimeError(f"reference writer failed:\n{run.stderr[-4000:]}")
    return json.loads(run.stdout)
