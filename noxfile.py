"""Development sessions: ``nox`` runs the tests; ``nox -l`` lists the others."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

SOURCES = ["langchain_es_cache", "tests", "utils", "examples", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole suite, async tests and their generated sync twins.

    Starts Elasticsearch for the run unless ES_URL names a cluster; posargs go
    to pytest.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the generated code is current."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)
    session.run("python", "utils/generate_sync.py", "--check")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[typecheck]")
    session.run("mypy")


@nox.session
def codegen(session: nox.Session) -> None:
    """Regenerate the sync twins; ``nox -s codegen -- --check`` only verifies."""
    session.install("-e", ".[codegen]")
    session.run("python", "utils/generate_sync.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """A chat model asked twice through each cache class, against Elasticsearch."""
    session.install("-e", ".")
    session.run("python", "examples/demo.py")
