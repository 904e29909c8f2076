"""Generate the sync twins of the async sources, or check that they are current.

    python utils/generate_sync.py            # write the generated trees
    python utils/generate_sync.py --check    # fail, with a diff, if they are stale

Each rule maps a hand-written async directory to a generated sync one. Names are
rewritten by unasync plus two generic rules (an ``Async`` prefix on a class and
an ``async_`` prefix on a function or fixture are dropped) and the small table
below. The output is formatted by ruff in both modes, so they cannot disagree.
``--check`` regenerates into a temporary directory outside the tree and compares
whole trees: a missing, extra or differing file fails it, and so does a table
entry that matched nothing.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import tokenize_rt
import unasync

ROOT = Path(__file__).resolve().parent.parent

RULES = [
    ("langchain_es_cache/_async", "langchain_es_cache/_sync"),
    ("tests/_async", "tests/_sync"),
]

# Only what naming conventions cannot express: LangChain's ``a``-prefixed methods
# and the package path of the generated modules.
REPLACEMENTS = {
    "_async": "_sync",
    "AsyncCacheTestSuite": "SyncCacheTestSuite",
    "BaseStoreAsyncTests": "BaseStoreSyncTests",
    "_astream": "_stream",
    "aacquire": "acquire",
    "abatch": "batch",
    "acheck": "check",
    "aclosing": "closing",
    "anext": "next",
    "aclear": "clear",
    "aclear_cache": "clear_cache",
    "aclose": "close",
    "aembed_documents": "embed_documents",
    "aembed_query": "embed_query",
    "agenerate": "generate",
    "aget": "get",
    "ainvoke": "invoke",
    "astream": "stream",
    "alookup": "lookup",
    "amdelete": "mdelete",
    "amget": "mget",
    "amset": "mset",
    "anearest": "nearest",
    "apurge_expired": "purge_expired",
    "aset": "set",
    "aupdate": "update",
    "ayield_keys": "yield_keys",
}

HEADER = (
    "# Generated from {source}: do not edit.\n"
    "# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).\n"
)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# In prose, "``async with``" and "await x" read "``with``" and "x" in the twin.
_ASYNC_PROSE = re.compile(
    r"\basync (?=with\b|for\b|def\b|iterator\b|generator\b)|\bawait "
)


def _docstring_starts(source: str) -> set[tuple[int, int]]:
    """``(line, column)`` of every module, class and function docstring."""
    starts = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(
            node,
            (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
        ):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                starts.add((first.lineno, first.col_offset))
    return starts


class _Rule(unasync.Rule):  # type: ignore[misc]
    """unasync's rule, with the generic prefix rules and a record of used entries.

    It relies on unasync 0.6.0's private ``_unasync_tokens`` and
    ``_unasync_name`` (pinned in pyproject.toml), and extends them to the prose
    of docstrings and comments, so the twin's documentation names its own API.
    """

    def __init__(self, used: set[str]) -> None:
        super().__init__("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        self.used = used

    def convert(self, source: str) -> str:
        """The sync twin of the async `source`."""
        docstrings = _docstring_starts(source)
        tokens = tokenize_rt.src_to_tokens(source)
        return str(tokenize_rt.tokens_to_src(self._prose(tokens, docstrings)))

    def _prose(
        self, tokens: Iterable[tokenize_rt.Token], docstrings: set[tuple[int, int]]
    ) -> Iterator[tokenize_rt.Token]:
        for token in self._unasync_tokens(tokens):
            is_doc = (
                token.name == "STRING"
                and (token.line, token.utf8_byte_offset) in docstrings
            )
            if is_doc or token.name == "COMMENT":
                text = _ASYNC_PROSE.sub("", token.src)
                text = _WORD.sub(lambda m: self._unasync_name(m.group()), text)
                token = token._replace(src=text)
            yield token

    def _unasync_name(self, name: str) -> str:
        if name in REPLACEMENTS:
            self.used.add(name)
            return REPLACEMENTS[name]
        if name in self.token_replacements:
            return str(self.token_replacements[name])
        if len(name) > 5 and name.startswith("Async") and name[5].isupper():
            return name[5:]
        if len(name) > 6 and name.startswith("async_"):
            return name[6:]
        return name


def _generate(out_root: Path, used: set[str]) -> list[Path]:
    """Write every generated tree under `out_root`; return the generated dirs."""
    rule = _Rule(used)
    targets = []
    for source_dir, target_dir in RULES:
        target = out_root / target_dir
        target.mkdir(parents=True, exist_ok=True)
        targets.append(target)
        for source in sorted((ROOT / source_dir).rglob("*.py")):
            relative = source.relative_to(ROOT / source_dir)
            text = rule.convert(source.read_text(encoding="utf-8"))
            header = HEADER.format(source=source.relative_to(ROOT).as_posix())
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header + text, encoding="utf-8")
    _format(targets)
    return targets


def _format(paths: list[Path]) -> None:
    config = str(ROOT / "pyproject.toml")
    ruff = [sys.executable, "-m", "ruff"]
    files = [str(p) for p in paths]
    # Renamed imports may need re-sorting; then the formatter settles the layout.
    subprocess.run(
        [
            *ruff,
            "check",
            "--config",
            config,
            "--select",
            "I,F401",
            "--fix",
            "-q",
            *files,
        ],
        check=True,
    )
    subprocess.run([*ruff, "format", "--config", config, "-q", *files], check=True)


def _tree(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _compare(expected_root: Path, actual_root: Path) -> list[str]:
    """Return a unified diff (and notes) of every difference between two trees."""
    expected, actual = _tree(expected_root), _tree(actual_root)
    problems = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            problems.append(f"missing generated file: {name}\n")
        elif name not in expected:
            problems.append(f"stray file in a generated directory: {name}\n")
        elif not filecmp.cmp(expected[name], actual[name], shallow=False):
            problems.extend(
                difflib.unified_diff(
                    actual[name].read_text(encoding="utf-8").splitlines(True),
                    expected[name].read_text(encoding="utf-8").splitlines(True),
                    f"{name} (committed)",
                    f"{name} (regenerated)",
                )
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if generated files are stale"
    )
    args = parser.parse_args()
    used: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="generate-sync-") as scratch:
        scratch_root = Path(scratch)
        _generate(scratch_root, used)
        if args.check:
            problems = []
            for _, target_dir in RULES:
                problems += _compare(scratch_root / target_dir, ROOT / target_dir)
        else:
            problems = []
            for _, target_dir in RULES:
                shutil.rmtree(ROOT / target_dir, ignore_errors=True)
                shutil.copytree(scratch_root / target_dir, ROOT / target_dir)
    unused = sorted(REPLACEMENTS.keys() - used)
    if unused:
        problems.append(f"replacement entries that matched nothing: {unused}\n")
    if problems:
        sys.stdout.writelines(problems)
        if args.check:
            print("generated code is stale: run `nox -s codegen`", file=sys.stderr)
        return 1
    print("generated code is up to date" if args.check else "generated code written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
