"""The engine interface: a server for a :class:`ServerSpec`, its stack identity, its teardown.

Every engine serves the OpenAI-compatible HTTP API on 127.0.0.1. An engine is a
:class:`Server` subclass registered by name in :data:`ENGINES`; :func:`create_server`
imports it lazily, so asking for ``vllm`` never imports a GPU stack until a server starts.

Most engines are a child process. :class:`ProcessServer` owns the lifecycle the design
requires of them (DESIGN §8): an argv list (never a shell), a free loopback port, its own
process group, an explicit environment, stdout+stderr to a log file, a readiness deadline
checked on every poll, the log tail kept for the error, and teardown of its own process
group by its own PID. A subclass supplies only the argv and the environment.

Errors::

    ServingError
     ├── ServerStartError   exited, or missed its deadline, before it was ready
     └── ServerDiedError    a server that had been ready is gone
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx

if TYPE_CHECKING:
    from .stack import StackIdentity

__all__ = [
    "ENGINES",
    "ENGINE_CAPABILITIES",
    "EngineCapabilities",
    "LOOPBACK",
    "ProcessServer",
    "Server",
    "ServerDiedError",
    "ServerSpec",
    "ServerStartError",
    "ServingError",
    "create_server",
    "engine_capabilities",
    "reason_from_log",
    "server_class",
]

LOOPBACK = "127.0.0.1"

#: Engine name -> "module:Class" (relative to this package), imported on first use.
ENGINES: dict[str, str] = {"vllm": ".vllm:VLLMServer", "llamacpp": ".llamacpp:LlamaCppServer"}


@dataclass(frozen=True)
class EngineCapabilities:
    """What one engine can express: the only table of it (config, design and the runner read it).

    ``axes`` maps each server axis the engine can express to its accepted levels (``None``: any
    value, the engine checks it at start); an axis missing from it is a config error, never
    silently ignored, and ``gaps`` says why it is missing. Client axes (batch_size,
    temperature) apply to every engine. ``model_format`` is what the engine serves: a model
    ``"directory"`` or a ``"gguf"`` file (converted offline from a directory).
    """

    axes: Mapping[str, tuple[str, ...] | None]
    gaps: Mapping[str, str] = field(default_factory=dict)
    model_format: str = "directory"


#: Engine name -> its capabilities; same names as :data:`ENGINES`.
ENGINE_CAPABILITIES: dict[str, EngineCapabilities] = {
    "vllm": EngineCapabilities(
        axes={"kv_cache_dtype": None, "prefix_caching": None, "speculative": None},
    ),
    "llamacpp": EngineCapabilities(
        axes={"kv_cache_dtype": ("f16", "q8_0", "q4_0")},  # serving/llamacpp.py KV_CACHE_TYPES
        gaps={
            "prefix_caching": "llama-cpp-python always reuses the previous request's KV "
            "prefix and has no switch for it",
            "speculative": "llama-cpp-python's server only drafts by prompt lookup; pass "
            'args = ["--draft_model", "prompt-lookup-decoding"] in the arm instead',
        },
        model_format="gguf",
    ),
}


def engine_capabilities(engine: str) -> EngineCapabilities:
    """The capabilities of the engine registered as ``engine``."""
    caps = ENGINE_CAPABILITIES.get(engine)
    if caps is None:
        raise ValueError(f"no serving engine registered as {engine!r}; known: {sorted(ENGINES)}")
    return caps


# ---------------------------------------------------------------------------------------------
# spec


@dataclass(frozen=True)
class ServerSpec:
    """Everything that decides how one server process is started.

    Parameters
    ----------
    engine : str
        Registered engine name (``"vllm"``).
    model : str
        Model directory (or file, for engines that serve one file).
    args : tuple of str
        Extra server flags, in order, appended after the engine's defaults (so they win).
    env : tuple of (str, str)
        Extra environment for the server process; stored sorted by key.
    label : str
        Human-readable name (``"candidate:kv_cache_dtype=fp8"``). Not part of the
        fingerprint: two arms with the same flags and env share one process.
    served_model_name : str, optional
        The name clients ask for; defaults to the model directory's name.

    Notes
    -----
    :attr:`fingerprint` is the sha256 of the canonical JSON of every field but ``label``.
    To force a separate process for an identical configuration (the A/A arm), give it a
    distinct ``env`` entry.
    """

    engine: str
    model: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    label: str = ""
    served_model_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.engine, str) or not self.engine:
            raise ValueError(f"ServerSpec.engine: expected an engine name, got {self.engine!r}")
        object.__setattr__(self, "model", os.fspath(self.model))
        if isinstance(self.args, str):
            raise TypeError(
                f"ServerSpec.args: expected a sequence of str, got the string {self.args!r}"
            )
        args = tuple(self.args)
        for arg in args:
            if not isinstance(arg, str):
                raise TypeError(f"ServerSpec.args: expected str items, got {arg!r} in {args!r}")
        object.__setattr__(self, "args", args)
        env = dict(self.env.items() if isinstance(self.env, Mapping) else self.env)
        for key, value in env.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"ServerSpec.env: expected str -> str, got {key!r}: {value!r}")
        object.__setattr__(self, "env", tuple(sorted(env.items())))

    @property
    def model_name(self) -> str:
        """What clients put in ``"model"``."""
        return self.served_model_name or Path(self.model).name or "model"

    def canonical(self) -> dict[str, Any]:
        """The fields that define the process, as plain JSON data (label excluded)."""
        data = asdict(self)
        del data["label"]
        data["args"] = list(self.args)
        data["env"] = [list(pair) for pair in self.env]
        return data

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: equal fingerprints mean one shared process."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# errors


class ServingError(RuntimeError):
    """Base class of this package's server errors."""


class ServerStartError(ServingError):
    """The server exited, or missed its readiness deadline, before it was ready.

    Attributes
    ----------
    reason : str
        The one line that says why, read from the log tail
        (e.g. ``"FP8 KV cache on CPU requires x86 with AVX-512 or AMX."``).
    log_path : Path or None
    argv : tuple of str
    returncode : int or None
        ``None`` when the deadline expired (the process was then stopped by us).
    log_lines : tuple of str
        The last lines of the log (at most :attr:`TAIL_LINES`).
    """

    TAIL_LINES = 40

    def __init__(
        self,
        reason: str,
        *,
        argv: Sequence[str] = (),
        log_path: Path | str | None = None,
        returncode: int | None = None,
        log_lines: Sequence[str] = (),
        label: str = "",
    ) -> None:
        self.reason = reason
        self.argv = tuple(argv)
        self.log_path = Path(log_path) if log_path is not None else None
        self.returncode = returncode
        self.log_lines = tuple(log_lines)[-self.TAIL_LINES :]
        self.label = label
        super().__init__(self._message())

    def _message(self) -> str:
        who = f"server {self.label!r}" if self.label else "server"
        if self.returncode is None:
            status = "did not become ready"
        else:
            status = f"exited with code {self.returncode}{_signal_note(self.returncode)}"
        lines = [
            f"{who} {status}: {self.reason}",
            f"  command: {shlex.join(self.argv)}",
            f"  log: {self.log_path}",
        ]
        if self.log_lines:
            lines.append(f"  last {len(self.log_lines)} log lines:")
            lines.extend(f"    {line}" for line in self.log_lines)
        return "\n".join(lines)

    def log_tail(self, n: int = TAIL_LINES) -> str:
        """The last ``n`` log lines as one string."""
        return "\n".join(self.log_lines[-n:])

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: rebuild explicitly so pickling (pytest-xdist) keeps the fields.
        return (
            _rebuild_start_error,
            (self.reason, self.argv, self.log_path, self.returncode, self.log_lines, self.label),
        )


def _rebuild_start_error(
    reason: str,
    argv: tuple[str, ...],
    log_path: Path | None,
    returncode: int | None,
    log_lines: tuple[str, ...],
    label: str,
) -> ServerStartError:
    return ServerStartError(
        reason,
        argv=argv,
        log_path=log_path,
        returncode=returncode,
        log_lines=log_lines,
        label=label,
    )


class ServerDiedError(ServingError):
    """A server that had been ready is gone (crashed, killed, out of memory).

    Attributes
    ----------
    reason : str
        From the log tail, else the signal or exit code.
    returncode : int or None
    log_path : Path or None
    """

    def __init__(
        self,
        reason: str,
        *,
        returncode: int | None = None,
        log_path: Path | str | None = None,
        label: str = "",
    ) -> None:
        self.reason = reason
        self.returncode = returncode
        self.log_path = Path(log_path) if log_path is not None else None
        self.label = label
        who = f"server {label!r}" if label else "server"
        code = "" if returncode is None else f" (exit code {returncode}{_signal_note(returncode)})"
        super().__init__(f"{who} died{code}: {reason}; log: {self.log_path}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_died_error, (self.reason, self.returncode, self.log_path, self.label))


def _rebuild_died_error(
    reason: str, returncode: int | None, log_path: Path | None, label: str
) -> ServerDiedError:
    return ServerDiedError(reason, returncode=returncode, log_path=log_path, label=label)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return str(-returncode)


def _signal_note(returncode: int) -> str:
    """ ", killed by SIGKILL (...)" for a negative return code, else ""."""
    if returncode >= 0:
        return ""
    name = _signal_name(returncode)
    hint = " (possibly out of memory)" if name == "SIGKILL" else ""
    return f", killed by {name}{hint}"


# ---------------------------------------------------------------------------------------------
# log tail -> reason

# "(EngineCore pid=7129) ERROR 11-23 10:50:00 [core.py:1510] " and friends.
_PROC_PREFIX = re.compile(r"^\((?:[\w ]+) pid=\d+\)\s*")
_LEVEL_PREFIX = re.compile(
    r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[[^\]]*\]\s?"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXCEPTION = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)):\s*(?P<msg>.*)$"
)
_ARGPARSE = re.compile(r"^\S+: error: (?P<msg>.+)$")
_PYDANTIC_HEAD = re.compile(r"^\d+ validation errors? for (?P<model>\w+)")
# Wrappers that only point elsewhere ("See root cause above"): never the reason.
_WRAPPER = re.compile(
    r"see root cause above|engine core initialization failed|enginecore failed to start"
    r"|engine process failed to start|see stack trace \(above\) for the root cause|^\s*$",
    re.IGNORECASE,
)
_FALLBACK_WORDS = re.compile(
    r"requires|error|failed|cannot|not supported|out of memory", re.IGNORECASE
)
_TRACEBACK_NOISE = re.compile(r'^\s*(File "|\^+$|~+|Traceback \(most recent call last\))')


def _clean(line: str) -> tuple[str, str]:
    """(level, text) with the process and logger prefixes stripped."""
    text = _ANSI.sub("", line.rstrip("\n"))
    text = _PROC_PREFIX.sub("", text)
    level = ""
    match = _LEVEL_PREFIX.match(text)
    if match:
        level = match["level"]
        text = text[match.end() :]
    return level, text


def reason_from_log(lines: Iterable[str]) -> str:
    """Pick the most informative line of a server log tail: why it stopped.

    Preference, searching from the end: the last exception message that is not a mere
    wrapper ("Engine core initialization failed. See root cause above."), so a chained
    traceback yields its root cause; an argparse ``error:`` line; a pydantic validation
    error with its first detail line; then the last ERROR/CRITICAL or unlevelled line that
    mentions *requires*/*error*/*failed*/...; then the last non-empty line.

    Examples
    --------
    >>> reason_from_log([
    ...     "NotImplementedError: FP8 KV cache on CPU requires x86 with AVX-512 or AMX.",
    ...     "RuntimeError: Engine core initialization failed. See root cause above.",
    ... ])
    'FP8 KV cache on CPU requires x86 with AVX-512 or AMX.'
    """
    cleaned = [_clean(line) for line in lines]
    texts = [text for _, text in cleaned]
    for i in range(len(cleaned) - 1, -1, -1):
        level, text = cleaned[i]
        stripped = text.strip()
        match = _EXCEPTION.match(stripped)
        if match and not _WRAPPER.search(match["msg"]):
            head = _PYDANTIC_HEAD.match(match["msg"])
            if head:
                return _pydantic_reason(head["model"], texts[i + 1 :]) or match["msg"].strip()
            return match["msg"].strip()
        match = _ARGPARSE.match(stripped)
        if match:
            return f"invalid arguments: {match['msg'].strip()}"
    for level, text in reversed(cleaned):
        if level in ("DEBUG", "INFO", "WARNING"):
            continue
        stripped = text.strip()
        if _TRACEBACK_NOISE.match(stripped) or _WRAPPER.search(stripped):
            continue
        if _FALLBACK_WORDS.search(stripped):
            return stripped
    for text in reversed(texts):
        if text.strip():
            return text.strip()
    return "no output in the server log"


def _pydantic_reason(model: str, following: Sequence[str]) -> str:
    details = []
    for line in following:
        text = line.strip()
        if not text or text.startswith("For further information"):
            continue
        details.append(re.sub(r"\s*\[type=.*$", "", text))
        if len(details) == 2:
            break
    return f"{model}: {': '.join(details)}" if details else ""


def read_log_tail(path: Path | None, n: int = 200) -> list[str]:
    """The last ``n`` lines of a log file (bounded read: logs can be large)."""
    if path is None:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-n:]


# ---------------------------------------------------------------------------------------------
# the interface


class Server(ABC):
    """One OpenAI-compatible server for one :class:`ServerSpec`.

    Use it as a context manager (``with VLLMServer(spec) as server: ...``) or call
    :meth:`start` and :meth:`stop`. :meth:`stop` is idempotent and safe after a failed start.
    """

    #: Registered engine name.
    engine: ClassVar[str]

    def __init__(self, spec: ServerSpec) -> None:
        if spec.engine != self.engine:
            raise ValueError(
                f"{type(self).__name__} serves engine {self.engine!r}, spec says {spec.engine!r}"
            )
        self.spec = spec
        #: Seconds from launch to ready; ``None`` until ready.
        self.start_seconds: float | None = None
        #: Resident memory (bytes) of the server's processes when it became ready.
        self.start_rss_bytes: int | None = None

    @property
    def served_model_name(self) -> str:
        """What clients put in ``"model"``."""
        return self.spec.model_name

    @property
    @abstractmethod
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""

    @abstractmethod
    def start(self) -> Self:
        """Start and wait until ready; raise :class:`ServerStartError` otherwise."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and everything it started. Idempotent."""

    @abstractmethod
    def alive(self) -> bool:
        """True while the server process runs (after a successful start)."""

    @abstractmethod
    def death_reason(self) -> tuple[str, int | None]:
        """(reason, returncode) of a server that is no longer alive."""

    @abstractmethod
    def stack_identity(self, extra: Mapping[str, Any] | None = None) -> StackIdentity:
        """What this server runs on: versions, device, model hash, normalised argv and env."""

    @classmethod
    def engine_identity(cls, spec: ServerSpec) -> dict[str, str]:
        """Engine facts the answers depend on beyond versions and argv (e.g. a native
        library's build and CPU features); merged into the stack identity's ``extra``."""
        return {}

    def check_alive(self) -> None:
        """Raise :class:`ServerDiedError` if the server is gone (the sampler's health check)."""
        if not self.alive():
            reason, code = self.death_reason()
            raise ServerDiedError(
                reason, returncode=code, log_path=self.log_path, label=self.spec.label
            )

    @property
    def log_path(self) -> Path | None:
        return None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def server_class(engine: str) -> type[Server]:
    """The :class:`Server` subclass registered as ``engine``."""
    target = ENGINES.get(engine)
    if target is None:
        raise ValueError(f"no serving engine registered as {engine!r}; known: {sorted(ENGINES)}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name, package=__package__)
    cls = getattr(module, attr)
    assert issubclass(cls, Server)
    return cls


def create_server(spec: ServerSpec, **options: Any) -> Server:
    """An unstarted server for ``spec`` from its engine (``options`` go to its constructor)."""
    return server_class(spec.engine)(spec, **options)


# ---------------------------------------------------------------------------------------------
# child-process servers

# Every started, not yet stopped, ProcessServer: stopped at interpreter exit so that a
# Ctrl-C or an unhandled error never leaves a server behind. Module state on purpose:
# atexit is process-wide too.
_LIVE: set[ProcessServer] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


atexit.register(_stop_all_live)


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free on ``host`` a moment ago (the server may still lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Launch:
    """One launched process (a start may retry on a lost port race)."""

    proc: subprocess.Popen[bytes]
    port: int
    argv: list[str]
    log_handle: Any = field(repr=False)


class ProcessServer(Server):
    """A server that is a child process speaking the OpenAI API over HTTP on loopback.

    Subclasses implement :meth:`argv_for` and may extend :meth:`env_for`.

    Parameters
    ----------
    spec : ServerSpec
    start_timeout_s : float
        Hard deadline from launch to ready, checked on every poll (also while the port
        still refuses connections).
    workdir : Path, optional
        Holds ``server.log`` and per-server caches; default a fresh temporary directory,
        removed by :meth:`stop` unless the server failed or died (the error names its log).
        A given ``workdir`` keeps its log; only its caches are removed.
    stop_grace_s : float
        Seconds between SIGTERM and SIGKILL to the process group.
    """

    #: Probed in order; each must answer 200 before the server counts as ready.
    ready_paths: ClassVar[tuple[str, ...]] = ("/health", "/v1/models")
    #: A start that loses the port race is retried this many times on a new port.
    port_retries: ClassVar[int] = 2

    def __init__(
        self,
        spec: ServerSpec | str | os.PathLike[str],
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 420.0,
        workdir: Path | str | None = None,
        stop_grace_s: float = 15.0,
        poll_interval_s: float = 0.25,
    ) -> None:
        # A model path with args/env is shorthand for this engine's ServerSpec.
        if not isinstance(spec, ServerSpec):
            spec = ServerSpec(self.engine, os.fspath(spec), args=tuple(args), env=tuple((env or {}).items()))
        elif args or env:
            raise TypeError(f"{type(self).__name__}: pass args/env in the ServerSpec, not beside it")
        super().__init__(spec)
        if start_timeout_s <= 0:
            raise ValueError(
                f"start_timeout_s: expected a positive number of seconds, got {start_timeout_s!r}"
            )
        self.start_timeout_s = float(start_timeout_s)
        self.stop_grace_s = float(stop_grace_s)
        self.poll_interval_s = float(poll_interval_s)
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_workdir = workdir is None
        self._launch: _Launch | None = None
        self._stopped = False
        self.env: dict[str, str] = {}

    # -- what subclasses provide ---------------------------------------------------------------

    @classmethod
    @abstractmethod
    def argv_for(cls, spec: ServerSpec, *, host: str, port: int) -> list[str]:
        """The command line for ``spec`` (a list: it is never given to a shell)."""

    @classmethod
    def env_for(
        cls, spec: ServerSpec, *, workdir: Path, base_env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The full environment: ``base_env`` (default ``os.environ``), then ``spec.env``."""
        env = dict(os.environ if base_env is None else base_env)
        env.update(spec.env)
        return env

    @classmethod
    def log_reason(cls, lines: Sequence[str]) -> str:
        """Why the server stopped, from its log tail (engines with their own log format extend it)."""
        return reason_from_log(lines)

    # -- state ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._launch is None:
            raise RuntimeError("server not started")
        return self._launch.port

    @property
    def pid(self) -> int | None:
        return self._launch.proc.pid if self._launch is not None else None

    @property
    def argv(self) -> list[str]:
        if self._launch is None:
            raise RuntimeError("server not started")
        return list(self._launch.argv)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            prefix = f"servecert-{self.engine}-{self.spec.fingerprint[:10]}-"
            self._workdir = Path(tempfile.mkdtemp(prefix=prefix))
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def alive(self) -> bool:
        launch = self._launch
        return launch is not None and not self._stopped and launch.proc.poll() is None

    def death_reason(self) -> tuple[str, int | None]:
        code = self._launch.proc.poll() if self._launch is not None else None
        if self._stopped:
            return "stopped", code
        if code is not None and code < 0:
            # Killed from outside: the log's last error is older and would mislead.
            return f"killed by signal {_signal_name(code)}", code
        return self.log_reason(read_log_tail(self.log_path)), code

    def rss_bytes(self) -> int | None:
        """Resident memory of the server's process group now (``None`` if unknown)."""
        pid = self.pid
        if pid is None or not self.alive():
            return None
        return _group_rss(pid)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._launch is not None or self._stopped:
            raise RuntimeError(f"{type(self).__name__} can start once; create a new one")
        t0 = time.monotonic()
        deadline = t0 + self.start_timeout_s
        try:
            for attempt in range(self.port_retries + 1):
                self._spawn()
                try:
                    self._wait_ready(deadline)
                    break
                except ServerStartError as exc:
                    self._terminate_group()
                    if (
                        attempt < self.port_retries
                        and "address already in use" in exc.reason.lower()
                    ):
                        self._launch = None
                        continue
                    raise
        except BaseException:
            self.stop()  # also on KeyboardInterrupt during a long start
            raise
        self.start_seconds = time.monotonic() - t0
        self.start_rss_bytes = self.rss_bytes()
        return self

    def stop(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._stopped:
            return
        healthy = self.alive()
        self._stopped = True
        if self._launch is not None:
            self._terminate_group()
        if self._workdir is None:
            return
        if healthy and self._own_workdir:
            # Stopped while serving: nothing to diagnose. A failed or dead server keeps its
            # log, which its ServerStartError / ServerDiedError points at.
            shutil.rmtree(self._workdir, ignore_errors=True)
        else:
            shutil.rmtree(self._workdir / "cache", ignore_errors=True)

    # -- internals -----------------------------------------------------------------------------

    def _spawn(self) -> None:
        port = free_port()
        argv = self.argv_for(self.spec, host=LOOPBACK, port=port)
        self.env = self.env_for(self.spec, workdir=self.workdir)
        (self.workdir / "cache").mkdir(parents=True, exist_ok=True)
        log_handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in _terminate_group
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,  # own process group: teardown reaches engine workers
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            log_handle.close()
            raise ServerStartError(
                f"could not execute {argv[0]!r}: {exc}",
                argv=argv,
                log_path=self.log_path,
                label=self.spec.label,
            ) from exc
        self._launch = _Launch(proc=proc, port=port, argv=argv, log_handle=log_handle)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _wait_ready(self, deadline: float) -> None:
        launch = self._launch
        assert launch is not None
        pending = list(self.ready_paths)
        with httpx.Client(base_url=f"http://{LOOPBACK}:{launch.port}", trust_env=False) as client:
            while pending:
                code = launch.proc.poll()
                if code is not None:
                    raise self._start_error(code)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._start_error(None)
                try:
                    response = client.get(pending[0], timeout=min(5.0, remaining))
                    if response.status_code == 200 and self._ready_answer_ok(pending[0], response):
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass  # not listening yet; the loop re-checks process and deadline
                time.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))

    def _ready_answer_ok(self, path: str, response: httpx.Response) -> bool:
        if path != "/v1/models":
            return True
        try:
            ids = {m.get("id") for m in response.json().get("data", [])}
        except (ValueError, AttributeError):
            return False
        return self.served_model_name in ids

    def _start_error(self, returncode: int | None) -> ServerStartError:
        launch = self._launch
        assert launch is not None
        tail = read_log_tail(self.log_path)
        if returncode is None:
            last = self.log_reason(tail) if tail else "no output in the server log"
            reason = f"not ready within {self.start_timeout_s:g} s (last log line of note: {last})"
        else:
            reason = self.log_reason(tail)
            if returncode < 0 and reason == "no output in the server log":
                reason = f"killed by signal {_signal_name(returncode)}"
        return ServerStartError(
            reason,
            argv=launch.argv,
            log_path=self.log_path,
            returncode=returncode,
            log_lines=tail,
            label=self.spec.label,
        )

    def _terminate_group(self) -> None:
        """SIGTERM our own process group, wait, then SIGKILL whatever is left."""
        launch = self._launch
        if launch is None:
            return
        pgid = launch.proc.pid  # start_new_session: the group id is our child's PID
        if launch.proc.poll() is None:
            _killpg(pgid, signal.SIGTERM)
            try:
                launch.proc.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                _killpg(pgid, signal.SIGKILL)
                launch.proc.wait()
        # Engine workers can outlive the API server (e.g. after it was SIGKILLed).
        _killpg(pgid, signal.SIGKILL)
        _wait_group_gone(pgid, timeout=5.0)
        if not launch.log_handle.closed:
            launch.log_handle.close()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the spawning thread dies (its process killed, even by SIGKILL).

    The server has its own session, so a killed pytest would otherwise leave it running
    (and holding gigabytes) forever. Linux only; elsewhere the atexit teardown remains.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process (zombies included) is left in group ``pgid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    return False


def _group_rss(pgid: int) -> int | None:
    """Sum of resident memory over the processes in group ``pgid``."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pgid)
            procs = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.Error:
            return None
    total = 0
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the ")" that closes the command name: state ppid pgrp ...
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    found = True
        except (OSError, ValueError, IndexError):
            continue
    return total if found else None
