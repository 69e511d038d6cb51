"""SQLite store: sampled responses, judge labels, runs and server failures.

Every response is written (and committed) before it is judged, keyed by a
fingerprint of *everything* that can change the answer: the arm fingerprint (engine,
model, server flags, env), the stack fingerprint (vLLM/torch/ISA/weights/code), the
serving context, the battery, the prompt id (and the sha256 of the text sent), the
sampling parameters and the replicate index. A changed flag or a stack bump therefore
yields new keys and is re-sampled; a killed pytest resumes by asking :meth:`Store.missing`
which keys still have no answer.

Concurrency: WAL journal, ``busy_timeout``, and ``BEGIN IMMEDIATE`` write transactions,
so several processes (pytest-xdist workers) can write the same file. Writes are
idempotent: a key that already has an answer is never overwritten, so two workers
sampling the same key store it once.

Errors (timeouts, HTTP 5xx) are stored in the same row with ``error`` set: they are
visible for reporting, never count as answers, are returned by :meth:`Store.missing` so
the next run retries them, and are replaced by the first successful answer. A *rejection*
(HTTP 4xx other than 408/429, e.g. a prompt longer than ``--max-model-len``) is final for
its key: the same server would refuse the same request again, so it is not retried
(:func:`is_rejection`); it never pairs, and the runner counts it.

Labels are keyed by ``(response_fingerprint, judge_spec_fingerprint)``: re-judging with
a new judge (or a cohort, stored under the cohort's own spec fingerprint) never
re-samples. Pairs are joined in SQL and streamed from a cursor (:meth:`Store.iter_pairs`);
``run.pair.count_pairs`` is the one place they are counted into McNemar cells.

Schema (version 1)
------------------
``responses``  fingerprint PK, arm_fingerprint, stack_fingerprint, context, battery,
               prompt_id, prompt_sha256, expected, temperature, seed, max_tokens, top_p,
               replicate, text, finish_reason, prompt_tokens, completion_tokens,
               latency_s, error, attempts, run_id, created_at
``labels``     (response_fingerprint, judge_spec_fingerprint) PK, judge_name, label,
               raw, created_at
``runs``       id PK, started_at, finished_at, config_hash, argv (JSON), versions
               (JSON), status
``server_failures``  id PK, arm_fingerprint, stack_fingerprint, reason, log_tail,
               run_id, created_at
``calibration_labels``  (corpus_sha256, judge_spec_fingerprint, item_key) PK, judge_name,
               label, raw, created_at: judge labels of calibration-corpus answers
``meta``       key PK, value (``schema_version``)

Timestamps are ISO-8601 local time with its UTC offset.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeVar

from .errors import ServecertError

if TYPE_CHECKING:
    from pytest_servecert.batteries import Prompt

__all__ = [
    "SCHEMA_VERSION",
    "LabelRow",
    "PairRow",
    "ResponseKey",
    "RunRecord",
    "SampledResponse",
    "CanaryRecord",
    "RunServer",
    "RunSummary",
    "ServerFailure",
    "Store",
    "StoreError",
    "StoredResponse",
    "is_rejection",
    "response_fingerprint",
]

SCHEMA_VERSION = 1
LABELS = ("refusal", "compliance", "unjudgeable")
_CHUNK = 500  # keys per IN (...) query; far below SQLITE_MAX_VARIABLE_NUMBER


class StoreError(ServecertError):
    """The store cannot be opened or used as asked; the message is one line."""


# --------------------------------------------------------------------------- keys


def response_fingerprint(
    arm_fingerprint: str,
    stack_fingerprint: str,
    context: str,
    battery: str,
    prompt_id: str,
    *,
    temperature: float,
    seed: int | None,
    max_tokens: int,
    top_p: float = 1.0,
    replicate: int = 0,
    prompt_sha256: str | None = None,
) -> str:
    """sha256 of the canonical JSON of everything that identifies one sampled answer.

    Numbers are normalised (``temperature=0`` and ``0.0`` give the same key) and the
    JSON has sorted keys and no whitespace, so the fingerprint is stable across
    processes and Python versions.
    """
    payload = {
        "v": SCHEMA_VERSION,
        "arm": arm_fingerprint,
        "stack": stack_fingerprint,
        "context": context,
        "battery": battery,
        "prompt_id": prompt_id,
        "prompt_sha256": prompt_sha256,
        "temperature": float(temperature),
        "seed": None if seed is None else int(seed),
        "max_tokens": int(max_tokens),
        "top_p": float(top_p),
        "replicate": int(replicate),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ResponseKey:
    """One request to sample: what identifies it, plus the prompt's expected behaviour.

    ``expected`` is stored for pairing and scoring but is not part of the fingerprint
    (it is a property of the prompt, which ``battery``/``prompt_id``/``prompt_sha256``
    already pin).
    """

    arm_fingerprint: str
    stack_fingerprint: str
    context: str
    battery: str
    prompt_id: str
    expected: Literal["refuse", "comply"]
    temperature: float
    seed: int | None
    max_tokens: int
    top_p: float = 1.0
    replicate: int = 0
    prompt_sha256: str | None = None

    @cached_property
    def fingerprint(self) -> str:
        return response_fingerprint(
            self.arm_fingerprint,
            self.stack_fingerprint,
            self.context,
            self.battery,
            self.prompt_id,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.max_tokens,
            top_p=self.top_p,
            replicate=self.replicate,
            prompt_sha256=self.prompt_sha256,
        )

    @classmethod
    def for_prompt(
        cls,
        prompt: Prompt,
        *,
        arm_fingerprint: str,
        stack_fingerprint: str,
        context: str,
        temperature: float,
        seed: int | None,
        max_tokens: int,
        top_p: float = 1.0,
        replicate: int = 0,
    ) -> ResponseKey:
        """Key for a battery prompt; includes the sha256 of the text actually sent."""
        return cls(
            arm_fingerprint=arm_fingerprint,
            stack_fingerprint=stack_fingerprint,
            context=context,
            battery=prompt.battery,
            prompt_id=prompt.prompt_id,
            expected=prompt.expected,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            top_p=top_p,
            replicate=replicate,
            prompt_sha256=prompt.text_sha256,
        )


class ResponseLike(Protocol):
    """What :meth:`Store.put_response` reads from a sampled response."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    error: str | None


@dataclass(frozen=True)
class SampledResponse:
    """What the server returned for one key (``error`` set when there is no answer)."""

    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class StoredResponse:
    """A row of ``responses``."""

    fingerprint: str
    arm_fingerprint: str
    stack_fingerprint: str
    context: str
    battery: str
    prompt_id: str
    prompt_sha256: str | None
    expected: str
    temperature: float
    seed: int | None
    max_tokens: int
    top_p: float
    replicate: int
    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    error: str | None
    attempts: int
    run_id: str | None
    created_at: str


@dataclass(frozen=True)
class LabelRow:
    """A row of ``labels``."""

    response_fingerprint: str
    judge_spec_fingerprint: str
    judge_name: str
    label: str
    raw: str
    created_at: str


@dataclass(frozen=True)
class PairRow:
    """One matched pair: the same request answered by baseline and candidate.

    Labels are ``None`` when that side has not been judged by the judge spec yet.
    """

    battery: str
    context: str
    prompt_id: str
    seed: int | None
    replicate: int
    expected: str
    baseline_fingerprint: str
    candidate_fingerprint: str
    baseline_label: str | None
    candidate_label: str | None


@dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``."""

    id: str
    started_at: str
    finished_at: str | None
    config_hash: str
    argv: tuple[str, ...]
    versions: Mapping[str, str]
    status: str


@dataclass(frozen=True)
class RunSummary:
    """A row of ``run_summaries``: what a finished certification concluded."""

    run_id: str
    status: str  # the worst verdict of its claims
    gate_passed: bool
    cohort_fingerprint: str
    verdicts: Mapping[str, str]  # result id -> verdict
    created_at: str


@dataclass(frozen=True)
class RunServer:
    """A row of ``run_servers``: one (arm, context) server of a run and its stated identity."""

    run_id: str
    arm: str
    context: str
    arm_fingerprint: str
    stack_fingerprint: str
    identity: Mapping[str, Any]


@dataclass(frozen=True)
class CanaryRecord:
    """A row of ``canary_runs``: one point of the canary time series."""

    id: str
    reference_run_id: str
    arm: str
    context: str
    started_at: str
    finished_at: str
    alarm: bool
    identity: Mapping[str, Any]
    figures: Mapping[str, Any]  # claim id -> its headline numbers
    verdicts: Mapping[str, str]  # claim id -> verdict


@dataclass(frozen=True)
class ServerFailure:
    """Why an arm's server did not start (so NOT RUN reasons survive the process)."""

    arm_fingerprint: str
    stack_fingerprint: str | None
    reason: str
    log_tail: str
    run_id: str | None
    created_at: str


# --------------------------------------------------------------------------- schema

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    fingerprint       TEXT PRIMARY KEY,
    arm_fingerprint   TEXT NOT NULL,
    stack_fingerprint TEXT NOT NULL,
    context           TEXT NOT NULL,
    battery           TEXT NOT NULL,
    prompt_id         TEXT NOT NULL,
    prompt_sha256     TEXT,
    expected          TEXT NOT NULL CHECK (expected IN ('refuse', 'comply')),
    temperature       REAL NOT NULL,
    seed              INTEGER,
    max_tokens        INTEGER NOT NULL,
    top_p             REAL NOT NULL,
    replicate         INTEGER NOT NULL,
    text              TEXT,
    finish_reason     TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_s         REAL,
    error             TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    run_id            TEXT,
    created_at        TEXT NOT NULL,
    CHECK (error IS NOT NULL OR text IS NOT NULL)
);
-- Serves both sides of the pair join and its ORDER BY, and per-arm scans.
CREATE INDEX IF NOT EXISTS responses_pair
    ON responses (arm_fingerprint, battery, context, prompt_id, seed, replicate);
CREATE TABLE IF NOT EXISTS labels (
    response_fingerprint   TEXT NOT NULL REFERENCES responses (fingerprint),
    judge_spec_fingerprint TEXT NOT NULL,
    judge_name             TEXT NOT NULL,
    label                  TEXT NOT NULL
        CHECK (label IN ('refusal', 'compliance', 'unjudgeable')),
    raw                    TEXT NOT NULL DEFAULT '',
    created_at             TEXT NOT NULL,
    PRIMARY KEY (response_fingerprint, judge_spec_fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS labels_judge ON labels (judge_spec_fingerprint);
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    config_hash TEXT NOT NULL,
    argv        TEXT NOT NULL,
    versions    TEXT NOT NULL,
    status      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_failures (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    arm_fingerprint   TEXT NOT NULL,
    stack_fingerprint TEXT,
    reason            TEXT NOT NULL,
    log_tail          TEXT NOT NULL DEFAULT '',
    run_id            TEXT,
    created_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_failures_arm ON server_failures (arm_fingerprint, id);
-- Judge labels of calibration-corpus answers (not responses of a run): one row per
-- (corpus sha256, item key, judge spec), so a re-run re-judges nothing.
CREATE TABLE IF NOT EXISTS calibration_labels (
    corpus_sha256          TEXT NOT NULL,
    item_key               TEXT NOT NULL,
    judge_spec_fingerprint TEXT NOT NULL,
    judge_name             TEXT NOT NULL,
    label                  TEXT NOT NULL
        CHECK (label IN ('refusal', 'compliance', 'unjudgeable')),
    raw                    TEXT NOT NULL DEFAULT '',
    created_at             TEXT NOT NULL,
    PRIMARY KEY (corpus_sha256, judge_spec_fingerprint, item_key)
) WITHOUT ROWID;
-- #18: what a finished certification concluded and which deployments it measured, so a
-- canary can find its reference run, and the canary time series. New tables only: a
-- store written before them gets them on open (CREATE TABLE IF NOT EXISTS), same version.
-- (No semicolon in these comments: _init_schema splits the script on it.)
CREATE TABLE IF NOT EXISTS run_summaries (
    run_id             TEXT PRIMARY KEY REFERENCES runs (id),
    status             TEXT NOT NULL,
    gate_passed        INTEGER NOT NULL,
    cohort_fingerprint TEXT NOT NULL,
    verdicts           TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_servers (
    run_id            TEXT NOT NULL REFERENCES runs (id),
    arm               TEXT NOT NULL,
    context           TEXT NOT NULL,
    arm_fingerprint   TEXT NOT NULL,
    stack_fingerprint TEXT NOT NULL,
    identity          TEXT NOT NULL,
    PRIMARY KEY (run_id, arm, context)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS canary_runs (
    id               TEXT PRIMARY KEY,
    reference_run_id TEXT NOT NULL,
    arm              TEXT NOT NULL,
    context          TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL,
    alarm            INTEGER NOT NULL,
    identity         TEXT NOT NULL,
    figures          TEXT NOT NULL,
    verdicts         TEXT NOT NULL
);
"""

_RESPONSE_COLUMNS = (
    "fingerprint, arm_fingerprint, stack_fingerprint, context, battery, prompt_id, "
    "prompt_sha256, expected, temperature, seed, max_tokens, top_p, replicate, text, "
    "finish_reason, prompt_tokens, completion_tokens, latency_s, error, attempts, run_id, "
    "created_at"
)

# HTTP 4xx except 408 (timeout) and 429 (rate limit): the server refuses this request as such.
#: What a server says when the *prompt itself* cannot be served (vLLM, llama.cpp, OpenAI-style
#: gateways): only these rejections are final. Any other 4xx (a wrong model name, an auth or
#: gateway error, a bad parameter) is a server-wide problem: the cell is NOT RUN with the status
#: and a re-run retries it (issue #15 item 7).
PROMPT_REJECTION_MARKERS = (
    "maximum context length",
    "maximum model length",
    "max_model_len",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "exceeds the context",
    "longer than the context",
    "longer than the maximum",
)
_REJECTION_SQL = (
    "(error LIKE 'HTTP 4%' AND error NOT LIKE 'HTTP 408%' AND error NOT LIKE 'HTTP 429%' AND ("
    + " OR ".join(f"lower(error) LIKE '%{m}%'" for m in PROMPT_REJECTION_MARKERS)
    + "))"
)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _refuse_foreign(path: Path) -> None:
    """Refuse a path that is not ours *without touching it* (no table created, no WAL switch):
    a directory, a non-SQLite file, another application's database or another schema version
    is left byte-for-byte unchanged (issue #15 item 6)."""
    if path.is_dir():
        raise StoreError(f"{path}: is a directory; expected a SQLite store file path")
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store ({exc.strerror or exc})") from None
    if header != _SQLITE_HEADER:
        raise StoreError(f"{path}: not a SQLite file; expected a servecert store (or a new path)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store read-only ({exc})") from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return
        if "meta" not in tables:
            found = ", ".join(sorted(tables))
            raise StoreError(f"{path}: not a servecert store (tables found: {found}); use another store path")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: unreadable store ({exc})") from None
    finally:
        conn.close()
    if row is None or row[0] != str(SCHEMA_VERSION):
        raise StoreError(
            f"{path}: schema_version {row[0] if row else None} is not supported (this "
            f"pytest-servecert reads version {SCHEMA_VERSION}); use a new store path "
            "or a matching pytest-servecert"
        )


def is_rejection(error: str | None) -> bool:
    """True for an error the server will return for this request every time because of the
    prompt (HTTP 4xx naming the context length): final, never retried. Keep in step with
    ``_REJECTION_SQL`` (both read :data:`PROMPT_REJECTION_MARKERS`)."""
    if not error or not error.startswith("HTTP 4") or error.startswith(("HTTP 408", "HTTP 429")):
        return False
    low = error.lower()
    return any(m in low for m in PROMPT_REJECTION_MARKERS)


# Successful answers are never replaced; a stored error is replaced by the next attempt
# (an answer, or a newer error), so errors are retried and never shadow an answer.
_PUT_RESPONSE = f"""
INSERT INTO responses ({_RESPONSE_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (fingerprint) DO UPDATE SET
    text = excluded.text,
    finish_reason = excluded.finish_reason,
    prompt_tokens = excluded.prompt_tokens,
    completion_tokens = excluded.completion_tokens,
    latency_s = excluded.latency_s,
    error = excluded.error,
    attempts = responses.attempts + 1,
    run_id = excluded.run_id,
    created_at = excluded.created_at
WHERE responses.error IS NOT NULL
"""

# Pairs: same context, battery, prompt (and text), sampling request and replicate.
# Stack fingerprints are deliberately not joined: a stack bump is a legitimate
# baseline-vs-candidate comparison; filter them with the *_stack_fp arguments.
_PAIR_FROM = """
FROM responses AS b
JOIN responses AS c
  ON c.arm_fingerprint = :candidate
 AND c.battery = b.battery
 AND c.context = b.context
 AND c.prompt_id = b.prompt_id
 AND c.seed IS b.seed
 AND c.replicate = b.replicate
 AND c.temperature = b.temperature
 AND c.max_tokens = b.max_tokens
 AND c.top_p = b.top_p
 AND c.prompt_sha256 IS b.prompt_sha256
 AND c.error IS NULL
LEFT JOIN labels AS lb
  ON lb.response_fingerprint = b.fingerprint AND lb.judge_spec_fingerprint = :judge
LEFT JOIN labels AS lc
  ON lc.response_fingerprint = c.fingerprint AND lc.judge_spec_fingerprint = :judge
WHERE b.arm_fingerprint = :baseline
  AND b.error IS NULL
"""

def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


K = TypeVar("K")


def _fingerprint_of(key: Any) -> str:
    return key if isinstance(key, str) else key.fingerprint


def _chunks(items: Sequence[K], size: int = _CHUNK) -> Iterator[Sequence[K]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- store


class Store:
    """The SQLite store at ``path`` (created with its directories if absent).

    Parameters
    ----------
    path
        Database file. ``":memory:"`` gives a private in-memory store (no WAL).
    busy_timeout_s
        How long a writer waits for another process's write transaction.
    synchronous
        SQLite ``synchronous`` level. ``FULL`` (default) makes every committed batch
        survive power loss, not just a killed process; batches keep it cheap.

    Raises
    ------
    StoreError
        The file is not SQLite, is another application's database, has a schema version
        this code does not know, or cannot be put in WAL mode.

    Notes
    -----
    One ``Store`` per thread; open another ``Store`` on the same path for another thread
    or process.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 60.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        memory = str(path) == ":memory:"
        if not memory:
            _refuse_foreign(self.path)  # before anything could write to it
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) so a writer takes
        # the lock up front and waits on busy_timeout instead of failing on upgrade.
        self._conn = sqlite3.connect(
            str(path), timeout=busy_timeout_s, isolation_level=None, cached_statements=64
        )
        self._depth = 0
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if not memory:
                self._enable_wal(busy_timeout_s)
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path}: cannot open store ({exc})") from None
        except StoreError:
            self._conn.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def _enable_wal(self, busy_timeout_s: float) -> None:
        # Switching to WAL needs a brief exclusive lock; when several workers open a new
        # store at once SQLite may report "locked" without calling the busy handler.
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot enable WAL journal (got {mode!r})")

    def _init_schema(self) -> None:
        with self.transaction():
            tables = {
                row[0]
                for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if tables and "meta" not in tables:
                found = ", ".join(sorted(tables))
                raise StoreError(f"{self.path}: not a servecert store (tables found: {found})")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            version = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()[0]
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.path}: schema_version {version} is not supported (this "
                f"pytest-servecert reads version {SCHEMA_VERSION}); use a new store path "
                "or a matching pytest-servecert"
            )

    def close(self) -> None:
        """Close the connection (pending transactions must have finished)."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (re-entrant: inner blocks join the outer one).

        Use it around a batch of puts so a thousand responses cost one commit, not a
        thousand fsyncs. Everything inside is durable once the block exits; an exception
        rolls the whole block back.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self._conn.execute("COMMIT")

    @property
    def journal_mode(self) -> str:
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    # ----------------------------------------------------------------- responses

    def missing(self, keys: Iterable[K]) -> list[K]:
        """The keys (fingerprints or objects with ``.fingerprint``) with no stored outcome.

        Keys whose stored row is an error are missing (they are retried), unless the error
        is a rejection (:func:`is_rejection`), which is final. Order and duplicates of
        ``keys`` are preserved.
        """
        items = list(keys)
        done = self._matching(items, f"(error IS NULL OR {_REJECTION_SQL})")
        return [k for k in items if _fingerprint_of(k) not in done]

    def rejected(self, keys: Iterable[K]) -> list[K]:
        """The keys whose stored row is a rejection (final; see :func:`is_rejection`)."""
        items = list(keys)
        found = self._matching(items, _REJECTION_SQL)
        return [k for k in items if _fingerprint_of(k) in found]

    def _matching(self, keys: Sequence[Any], condition: str) -> set[str]:
        fingerprints = sorted({_fingerprint_of(k) for k in keys})
        found: set[str] = set()
        for chunk in _chunks(fingerprints):
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._conn.execute(
                    f"SELECT fingerprint FROM responses WHERE {condition} AND fingerprint IN ({marks})",
                    chunk,
                )
            )
        return found

    def put_response(
        self, key: ResponseKey, response: ResponseLike, *, run_id: str | None = None
    ) -> bool:
        """Store one sampled response; True if stored (new answer, or an error replaced).

        Idempotent: a key that already has an answer is left untouched.
        """
        return self.put_responses([(key, response)], run_id=run_id) == 1

    def put_responses(
        self, items: Iterable[tuple[ResponseKey, ResponseLike]], *, run_id: str | None = None
    ) -> int:
        """Store many responses in one transaction; returns how many rows changed."""
        now = _now()
        rows = []
        for key, response in items:
            error = getattr(response, "error", None)
            text = getattr(response, "text", None)
            if error is None and text is None:
                raise StoreError(
                    f"response {key.fingerprint[:12]} ({key.battery}/{key.prompt_id}): "
                    "neither text nor error; expected one of them"
                )
            rows.append(
                (
                    key.fingerprint,
                    key.arm_fingerprint,
                    key.stack_fingerprint,
                    key.context,
                    key.battery,
                    key.prompt_id,
                    key.prompt_sha256,
                    key.expected,
                    float(key.temperature),
                    None if key.seed is None else int(key.seed),
                    int(key.max_tokens),
                    float(key.top_p),
                    int(key.replicate),
                    text,
                    getattr(response, "finish_reason", None),
                    getattr(response, "prompt_tokens", None),
                    getattr(response, "completion_tokens", None),
                    getattr(response, "latency_s", None),
                    error,
                    run_id,
                    now,
                )
            )
        if not rows:
            return 0
        with self.transaction():
            before = self._conn.total_changes
            self._conn.executemany(_PUT_RESPONSE, rows)
            return self._conn.total_changes - before

    def get_response(self, fingerprint: str) -> StoredResponse | None:
        """The stored row for a fingerprint (answer or error), or None."""
        row = self._conn.execute(
            f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return StoredResponse(*row) if row else None

    def iter_responses(
        self,
        *,
        arm_fingerprint: str | None = None,
        battery: str | None = None,
        context: str | None = None,
        include_errors: bool = False,
    ) -> Iterator[StoredResponse]:
        """Stream stored responses (answers only unless ``include_errors``)."""
        where, params = self._filters(
            arm_fingerprint=arm_fingerprint, battery=battery, context=context
        )
        if not include_errors:
            where.append("error IS NULL")
        sql = f"SELECT {_RESPONSE_COLUMNS} FROM responses"
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self._conn.execute(sql + " ORDER BY arm_fingerprint, battery, context", params):
            yield StoredResponse(*row)

    def unlabelled(
        self,
        judge_spec_fingerprint: str,
        *,
        arm_fingerprint: str | None = None,
        battery: str | None = None,
        context: str | None = None,
    ) -> Iterator[StoredResponse]:
        """Stream answers that ``judge_spec_fingerprint`` has not labelled yet."""
        where, params = self._filters(
            arm_fingerprint=arm_fingerprint, battery=battery, context=context, prefix="r."
        )
        where.append("r.error IS NULL")
        where.append("l.response_fingerprint IS NULL")
        columns = ", ".join(f"r.{c.strip()}" for c in _RESPONSE_COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM responses AS r LEFT JOIN labels AS l "
            "ON l.response_fingerprint = r.fingerprint AND l.judge_spec_fingerprint = :judge "
            "WHERE " + " AND ".join(where)
        )
        for row in self._conn.execute(sql, {**params, "judge": judge_spec_fingerprint}):
            yield StoredResponse(*row)

    @staticmethod
    def _filters(prefix: str = "", **values: Any) -> tuple[list[str], dict[str, Any]]:
        where = [f"{prefix}{name} = :{name}" for name, value in values.items() if value is not None]
        return where, {name: value for name, value in values.items() if value is not None}

    # ----------------------------------------------------------------- labels

    def put_label(
        self,
        response_fingerprint: str,
        judge_spec_fingerprint: str,
        judge_name: str,
        label: str,
        raw: str = "",
        *,
        overwrite: bool = False,
    ) -> bool:
        """Store one label; see :meth:`put_labels`."""
        return (
            self.put_labels(
                [(response_fingerprint, judge_spec_fingerprint, judge_name, label, raw)],
                overwrite=overwrite,
            )
            == 1
        )

    def put_labels(
        self,
        rows: Iterable[tuple[str, str, str, str, str | None]],
        *,
        overwrite: bool = False,
    ) -> int:
        """Store labels ``(response_fp, judge_spec_fp, judge_name, label, raw)``.

        Only answers can be labelled (an error row or an unknown fingerprint is a
        ``StoreError``). An existing label for the same judge spec is kept unless
        ``overwrite`` (e.g. to retry an ``unjudgeable``). Returns rows written.
        """
        now = _now()
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        written = 0
        with self.transaction():
            for response_fp, judge_fp, judge_name, label, raw in rows:
                label = getattr(label, "value", label)  # accept a Label enum
                if label not in LABELS:
                    raise StoreError(
                        f"label {label!r} for response {response_fp[:12]}; "
                        f"expected one of {', '.join(LABELS)}"
                    )
                found = self._conn.execute(
                    "SELECT error IS NULL FROM responses WHERE fingerprint = ?", (response_fp,)
                ).fetchone()
                if found is None or not found[0]:
                    what = "unknown response" if found is None else "an error response"
                    raise StoreError(
                        f"cannot label {what} {response_fp[:12]} (judge {judge_name}); "
                        "only stored answers are judged"
                    )
                cursor = self._conn.execute(
                    f"{verb} INTO labels (response_fingerprint, judge_spec_fingerprint, "
                    "judge_name, label, raw, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (response_fp, judge_fp, judge_name, label, raw or "", now),
                )
                written += cursor.rowcount
        return written

    def labels_for(
        self, judge_spec_fingerprint: str, response_fingerprints: Iterable[str] | None = None
    ) -> dict[str, str]:
        """``response_fingerprint → label`` for one judge spec (optionally only some)."""
        if response_fingerprints is None:
            cursor = self._conn.execute(
                "SELECT response_fingerprint, label FROM labels WHERE judge_spec_fingerprint = ?",
                (judge_spec_fingerprint,),
            )
            return dict(cursor)
        result: dict[str, str] = {}
        wanted = sorted(set(response_fingerprints))
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            result.update(
                self._conn.execute(
                    "SELECT response_fingerprint, label FROM labels "
                    f"WHERE judge_spec_fingerprint = ? AND response_fingerprint IN ({marks})",
                    (judge_spec_fingerprint, *chunk),
                )
            )
        return result

    def iter_labels(self, judge_spec_fingerprint: str) -> Iterator[LabelRow]:
        """Stream every label of one judge spec, with its raw judge output."""
        cursor = self._conn.execute(
            "SELECT response_fingerprint, judge_spec_fingerprint, judge_name, label, raw, "
            "created_at FROM labels WHERE judge_spec_fingerprint = ?",
            (judge_spec_fingerprint,),
        )
        for row in cursor:
            yield LabelRow(*row)

    # ----------------------------------------------------------------- calibration labels

    def put_calibration_labels(
        self, corpus_sha256: str, rows: Iterable[tuple[str, str, str, str, str | None]]
    ) -> int:
        """Store corpus labels ``(item_key, judge_spec_fp, judge_name, label, raw)``; existing
        ones are kept. Returns rows written."""
        now = _now()
        written = 0
        with self.transaction():
            for key, judge_fp, judge_name, label, raw in rows:
                label = getattr(label, "value", label)
                if label not in LABELS:
                    raise StoreError(f"label {label!r} for corpus item {key}; expected one of {', '.join(LABELS)}")
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO calibration_labels (corpus_sha256, item_key, "
                    "judge_spec_fingerprint, judge_name, label, raw, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (corpus_sha256, key, judge_fp, judge_name, label, raw or "", now),
                )
                written += cursor.rowcount
        return written

    def calibration_labels(self, corpus_sha256: str, judge_spec_fingerprint: str) -> dict[str, str]:
        """``item_key → label`` of one judge spec on one corpus."""
        cursor = self._conn.execute(
            "SELECT item_key, label FROM calibration_labels "
            "WHERE corpus_sha256 = ? AND judge_spec_fingerprint = ?",
            (corpus_sha256, judge_spec_fingerprint),
        )
        return dict(cursor)

    # ----------------------------------------------------------------- pairs

    def _pair_params(
        self,
        baseline_arm_fp: str,
        candidate_arm_fp: str,
        judge_spec_fp: str,
        battery: str | None,
        context: str | None,
        baseline_stack_fp: str | None,
        candidate_stack_fp: str | None,
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "baseline": baseline_arm_fp,
            "candidate": candidate_arm_fp,
            "judge": judge_spec_fp,
        }
        filters = []
        for column, name, value in (
            ("b.battery", "battery", battery),
            ("b.context", "context", context),
            ("b.stack_fingerprint", "baseline_stack", baseline_stack_fp),
            ("c.stack_fingerprint", "candidate_stack", candidate_stack_fp),
        ):
            if value is not None:
                filters.append(f"AND {column} = :{name}")
                params[name] = value
        return " ".join(filters), params

    def iter_pairs(
        self,
        baseline_arm_fp: str,
        candidate_arm_fp: str,
        judge_spec_fp: str,
        *,
        battery: str | None = None,
        context: str | None = None,
        baseline_stack_fp: str | None = None,
        candidate_stack_fp: str | None = None,
    ) -> Iterator[PairRow]:
        """Stream matched pairs with their labels, ordered by battery, context, prompt.

        A pair is the same (context, battery, prompt id and text, temperature, seed,
        max_tokens, top_p, replicate) answered by both arms; errors never pair. Rows are
        read from a cursor, never all at once. Pass the stack fingerprints when the store
        holds answers of an arm from more than one stack, or each would pair.
        """
        filters, params = self._pair_params(
            baseline_arm_fp,
            candidate_arm_fp,
            judge_spec_fp,
            battery,
            context,
            baseline_stack_fp,
            candidate_stack_fp,
        )
        sql = (
            "SELECT b.battery, b.context, b.prompt_id, b.seed, b.replicate, b.expected, "
            "b.fingerprint, c.fingerprint, lb.label, lc.label "
            f"{_PAIR_FROM} {filters} "
            "ORDER BY b.battery, b.context, b.prompt_id, b.seed, b.replicate"
        )
        for row in self._conn.execute(sql, params):
            yield PairRow(*row)

    # ----------------------------------------------------------------- runs

    def start_run(
        self,
        *,
        config_hash: str,
        argv: Sequence[str],
        versions: Mapping[str, str],
        run_id: str | None = None,
    ) -> str:
        """Record a run as ``running``; returns its id."""
        run_id = run_id or uuid.uuid4().hex
        with self.transaction():
            self._conn.execute(
                "INSERT INTO runs (id, started_at, finished_at, config_hash, argv, versions, "
                "status) VALUES (?, ?, NULL, ?, ?, ?, 'running')",
                (
                    run_id,
                    _now(),
                    config_hash,
                    json.dumps(list(argv)),
                    json.dumps(dict(versions), sort_keys=True),
                ),
            )
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark a run finished with ``status`` (e.g. ``passed``, ``failed``, ``interrupted``)."""
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                (_now(), status, run_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"{self.path}: no run with id {run_id!r}")

    def runs(self) -> list[RunRecord]:
        """All runs, oldest first."""
        rows = self._conn.execute(
            "SELECT id, started_at, finished_at, config_hash, argv, versions, status "
            "FROM runs ORDER BY started_at, id"
        )
        return [
            RunRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), json.loads(r[5]), r[6])
            for r in rows
        ]

    # ----------------------------------------------------------------- run summaries (#18)

    def record_run_summary(
        self, run_id: str, *, status: str, gate_passed: bool, cohort_fingerprint: str,
        verdicts: Mapping[str, str], servers: Iterable[tuple[str, str, str, str, Mapping[str, Any]]],
    ) -> None:
        """Record what run ``run_id`` concluded and its servers
        ``(arm, context, arm_fingerprint, stack_fingerprint, identity)``; replaces an earlier record."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO run_summaries (run_id, status, gate_passed, cohort_fingerprint, "
                "verdicts, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, status, int(bool(gate_passed)), cohort_fingerprint,
                 json.dumps(dict(verdicts), sort_keys=True), _now()),
            )
            for arm, context, arm_fp, stack_fp, identity in servers:
                self._conn.execute(
                    "INSERT OR REPLACE INTO run_servers (run_id, arm, context, arm_fingerprint, "
                    "stack_fingerprint, identity) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, arm, context, arm_fp, stack_fp, json.dumps(identity, sort_keys=True, default=str)),
                )

    def run_summaries(self) -> list[RunSummary]:
        """Summaries of complete runs, oldest first."""
        rows = self._conn.execute(
            "SELECT s.run_id, s.status, s.gate_passed, s.cohort_fingerprint, s.verdicts, s.created_at "
            "FROM run_summaries s JOIN runs r ON r.id = s.run_id WHERE r.status = 'complete' "
            "ORDER BY s.created_at, s.run_id"
        )
        return [RunSummary(r[0], r[1], bool(r[2]), r[3], json.loads(r[4]), r[5]) for r in rows]

    def run_server(self, run_id: str, arm: str, context: str) -> RunServer | None:
        """The server of ``arm`` in ``context`` of run ``run_id``, or None."""
        row = self._conn.execute(
            "SELECT run_id, arm, context, arm_fingerprint, stack_fingerprint, identity FROM run_servers "
            "WHERE run_id = ? AND arm = ? AND context = ?", (run_id, arm, context),
        ).fetchone()
        return RunServer(*row[:5], json.loads(row[5])) if row else None

    def responses_of(self, arm_fingerprint: str, stack_fingerprint: str, context: str) -> list[StoredResponse]:
        """The stored answers of one arm, stack and context (a run's certified answers)."""
        rows = self._conn.execute(
            f"SELECT {_RESPONSE_COLUMNS} FROM responses WHERE arm_fingerprint = ? AND stack_fingerprint = ? "
            "AND context = ? AND error IS NULL ORDER BY battery, prompt_id, seed, replicate",
            (arm_fingerprint, stack_fingerprint, context),
        )
        return [StoredResponse(*row) for row in rows]

    # ----------------------------------------------------------------- canary series (#18)

    def add_canary_run(self, record: CanaryRecord) -> None:
        """Append one canary run to the series."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO canary_runs (id, reference_run_id, arm, context, started_at, finished_at, "
                "alarm, identity, figures, verdicts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.reference_run_id, record.arm, record.context, record.started_at,
                 record.finished_at, int(record.alarm), json.dumps(record.identity, sort_keys=True, default=str),
                 json.dumps(record.figures, sort_keys=True, default=str),
                 json.dumps(record.verdicts, sort_keys=True)),
            )

    def canary_runs(self) -> list[CanaryRecord]:
        """The canary series, oldest first."""
        rows = self._conn.execute(
            "SELECT id, reference_run_id, arm, context, started_at, finished_at, alarm, identity, figures, "
            "verdicts FROM canary_runs ORDER BY started_at, id"
        )
        return [CanaryRecord(*r[:6], bool(r[6]), json.loads(r[7]), json.loads(r[8]), json.loads(r[9]))
                for r in rows]

    # ----------------------------------------------------------------- server failures

    def record_server_failure(
        self,
        arm_fingerprint: str,
        reason: str,
        *,
        stack_fingerprint: str | None = None,
        log_tail: str = "",
        run_id: str | None = None,
    ) -> None:
        """Persist why an arm's server did not start (its NOT RUN reason)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO server_failures (arm_fingerprint, stack_fingerprint, reason, "
                "log_tail, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (arm_fingerprint, stack_fingerprint, reason, log_tail, run_id, _now()),
            )

    def server_failures(self, arm_fingerprint: str | None = None) -> list[ServerFailure]:
        """Recorded failures, oldest first (of one arm when given)."""
        sql = (
            "SELECT arm_fingerprint, stack_fingerprint, reason, log_tail, run_id, created_at "
            "FROM server_failures"
        )
        params: tuple[str, ...] = ()
        if arm_fingerprint is not None:
            sql += " WHERE arm_fingerprint = ?"
            params = (arm_fingerprint,)
        return [ServerFailure(*row) for row in self._conn.execute(sql + " ORDER BY id", params)]

    def latest_server_failure(self, arm_fingerprint: str) -> ServerFailure | None:
        """The most recent failure of an arm, or None."""
        row = self._conn.execute(
            "SELECT arm_fingerprint, stack_fingerprint, reason, log_tail, run_id, created_at "
            "FROM server_failures WHERE arm_fingerprint = ? ORDER BY id DESC LIMIT 1",
            (arm_fingerprint,),
        ).fetchone()
        return ServerFailure(*row) if row else None
