"""The generator's check catches hand edits, stray and missing generated files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def copy_project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(
            ".git", ".nox", ".venv", ".*_cache", "__pycache__"
        ),
    )
    return target


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "utils/generate_sync.py", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
    )


def edit_generated(root: Path) -> None:
    path = root / "langchain_es_cache/_sync/cache.py"
    path.write_text(path.read_text().replace("return None", "return []", 1))


def add_stray(root: Path) -> None:
    (root / "langchain_es_cache/_sync/stray.py").write_text("x = 1\n")


def remove_generated(root: Path) -> None:
    (root / "tests/_sync/conftest.py").unlink()


def edit_source(root: Path) -> None:
    path = root / "langchain_es_cache/_async/cache.py"
    path.write_text(path.read_text() + "\n\nNEW_NAME = 1\n")


def test_committed_tree_is_current() -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (edit_generated, "return []"),
        (add_stray, "stray file in a generated directory: stray.py"),
        (remove_generated, "missing generated file: conftest.py"),
        (edit_source, "+NEW_NAME = 1"),
    ],
    ids=["hand-edit", "stray-file", "missing-file", "stale"],
)
def test_check_fails_on(
    tmp_path: Path, change: Callable[[Path], None], expected: str
) -> None:
    root = copy_project(tmp_path)
    change(root)
    result = check(root)
    assert result.returncode == 1
    assert expected in result.stdout
    assert not any(p.name.startswith("generate-sync-") for p in root.rglob("*"))


def test_unused_replacement_entry_fails(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    script = root / "utils/generate_sync.py"
    script.write_text(
        script.read_text().replace(
            "REPLACEMENTS = {", 'REPLACEMENTS = {\n    "anever_used": "never_used",', 1
        )
    )
    result = check(root)
    assert result.returncode == 1
    assert "replacement entries that matched nothing: ['anever_used']" in result.stdout


def test_generated_files_carry_the_header() -> None:
    for path in [
        *ROOT.glob("langchain_es_cache/_sync/*.py"),
        *ROOT.glob("tests/_sync/*.py"),
    ]:
        first = path.read_text().splitlines()[0]
        source = (
            path.as_posix()
            .replace("/_sync/", "/_async/")
            .split(ROOT.as_posix() + "/")[1]
        )
        assert first == f"# Generated from {source}: do not edit."


def test_docstrings_and_comments_name_the_twins_api() -> None:
    from utils.generate_sync import _Rule

    source = (
        "async def aclose(client):\n"
        '    """Close it, as `amget` does, or with ``async with``."""\n'
        "    # await the client, then aclose it\n"
        '    return "aclose in a message stays"\n'
    )
    converted = _Rule(set()).convert(source)
    assert '"""Close it, as `mget` does, or with ``with``."""' in converted
    assert "# the client, then close it" in converted
    assert '"aclose in a message stays"' in converted


def test_generated_package_never_names_async_apis() -> None:
    import re

    from utils.generate_sync import REPLACEMENTS

    async_names = [name for name in REPLACEMENTS if name.startswith("a")]
    pattern = re.compile(
        r"\b(" + "|".join(async_names) + r")\b|\basync (with|for|def)\b|\bawait\b"
    )
    for path in ROOT.glob("langchain_es_cache/_sync/*.py"):
        found = pattern.search(path.read_text())
        assert found is None, f"{path.name}: {found}"
