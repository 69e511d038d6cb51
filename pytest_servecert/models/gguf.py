"""GGUF files for the llama.cpp engine, converted offline and cached by weights hash.

The converter is llama.cpp's own ``convert_hf_to_gguf.py`` (with its ``conversion/`` package
and ``gguf-py``) as shipped in the llama-cpp-python **source distribution** of the installed
version, so the file format always matches the library that serves it:

* install time, once: :func:`fetch_converter` asks pip for that sdist (``pip download``, the
  ordinary client; pip's cache makes it free after the first build) and extracts the converter
  to ``<cache>/llamacpp/converter-<version>/``. tox runs it when it installs the environment::

      python -m pytest_servecert.models.gguf fetch-converter

* run time, offline: :func:`ensure_gguf` converts a Hugging Face model directory into
  ``<cache>/gguf/<name>-<key>.<outtype>.gguf``, where ``key`` hashes the weights, the config and
  tokenizer files, the converter version and the output type. A build goes to a temporary file
  renamed into place under a file lock, so concurrent callers convert once and a killed
  conversion leaves nothing behind. Nothing is downloaded at run time::

      python -m pytest_servecert.models.gguf convert embedded:target   # prints the GGUF path

``<cache>`` is ``$SERVECERT_CACHE_DIR``, else the user cache (``platformdirs``), as for the
embedded model. The default output type ``f32`` keeps the weights bit-identical to what the
vLLM profile serves (``--dtype float32``): a KV-cache contrast then changes only the cache.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import ServecertError

__all__ = [
    "OUTTYPES",
    "GGUFError",
    "cache_root",
    "convert_to_gguf",
    "converter_dir",
    "ensure_gguf",
    "fetch_converter",
    "gguf_key",
    "gguf_parameter_count",
    "gguf_path",
    "llama_cpp_version",
    "resolve_gguf",
]

#: Output types of ``convert_hf_to_gguf.py`` that this module offers.
OUTTYPES = ("f32", "f16", "bf16", "q8_0")
#: What the converter needs from the sdist (paths under ``vendor/llama.cpp/``).
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
_FORMAT_VERSION = 1  # bump when the conversion recipe (wrapper, flags) changes
_CONVERT_TIMEOUT_S = 1800.0


class GGUFError(ServecertError, RuntimeError):
    """A GGUF could not be produced (one line: what, where, and what to do)."""


def cache_root() -> Path:
    """``$SERVECERT_CACHE_DIR``, else ``platformdirs.user_cache_dir("servecert")``."""
    env = os.environ.get("SERVECERT_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("servecert"))


def llama_cpp_version() -> str:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        raise GGUFError(
            "llama-cpp-python is not installed: pip install 'pytest-servecert[llamacpp]'"
        ) from None


def converter_dir(version: str | None = None) -> Path:
    """Where the converter of llama-cpp-python ``version`` (default: installed) lives."""
    return cache_root() / "llamacpp" / f"converter-{version or llama_cpp_version()}"


def _converter_complete(path: Path) -> bool:
    return (path / "convert_hf_to_gguf.py").is_file() and (path / "conversion").is_dir()


def fetch_converter(version: str | None = None, *, python: str = sys.executable) -> Path:
    """Install-time step: extract the converter from llama-cpp-python's sdist (idempotent)."""
    version = version or llama_cpp_version()
    target = converter_dir(version)
    if _converter_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target), tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if _converter_complete(target):
            return target
        download = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                tmp,
                f"llama-cpp-python=={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if download.returncode != 0 or not sdists:
            last = (download.stderr or download.stdout).strip().splitlines()[-1:] or ["no output"]
            raise GGUFError(f"pip could not fetch the llama-cpp-python {version} sdist: {last[0]}")
        staging = Path(tmp) / "converter"
        prefix = f"{sdists[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(sdists[0]) as archive:
            for member in archive.getmembers():
                rel = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and rel.startswith(_CONVERTER_PARTS):
                    member.name = rel
                    archive.extract(member, staging, filter="data")
        if not _converter_complete(staging):
            raise GGUFError(f"{sdists[0].name}: no vendor/llama.cpp/convert_hf_to_gguf.py inside")
        (staging / "SOURCE").write_text(f"{sdists[0].name} (llama-cpp-python sdist)\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return target


def gguf_key(model_dir: Path, outtype: str, version: str) -> str:
    """Cache key: weights, config/tokenizer files, converter version, output type, recipe."""
    from ..serving.stack import model_files_sha256, model_sha256

    data = {
        "weights": model_sha256(model_dir),
        "files": model_files_sha256(model_dir),
        "llama-cpp-python": version,
        "outtype": outtype,
        "format": _FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def gguf_path(model_dir: str | Path, outtype: str = "f32") -> Path:
    """Where :func:`ensure_gguf` keeps the GGUF of ``model_dir`` (it may not exist yet)."""
    model_dir = Path(model_dir)
    key = gguf_key(model_dir, outtype, llama_cpp_version())[:16]
    return cache_root() / "gguf" / f"{model_dir.name}-{key}.{outtype}.gguf"


def ensure_gguf(
    model_dir: str | Path,
    *,
    outtype: str = "f32",
    python: str = sys.executable,
    timeout_s: float = _CONVERT_TIMEOUT_S,
) -> Path:
    """The cached GGUF of a Hugging Face model directory, converting it first if missing."""
    _check_source(Path(model_dir), outtype)
    out = gguf_path(model_dir, outtype)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if out.is_file():
            return out
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            convert_to_gguf(
                model_dir,
                tmp,
                outtype=outtype,
                python=python,
                timeout_s=timeout_s,
                log=out.with_name(out.name + ".log"),
            )
            tmp.chmod(0o644)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def convert_to_gguf(
    model_dir: str | Path,
    out: str | Path,
    *,
    outtype: str = "f32",
    python: str = sys.executable,
    timeout_s: float = _CONVERT_TIMEOUT_S,
    log: str | Path | None = None,
) -> Path:
    """Convert ``model_dir`` to ``out`` now (no cache): llama.cpp's converter in a child process.

    The converter's output goes to ``log`` (default ``<out>.log``), kept only on failure.
    """
    model_dir, out = Path(model_dir), Path(out)
    _check_source(model_dir, outtype)
    version = llama_cpp_version()
    converter = converter_dir(version)
    if not _converter_complete(converter):
        raise GGUFError(
            f"GGUF converter for llama-cpp-python {version} not found at {converter}: run "
            "`python -m pytest_servecert.models.gguf fetch-converter` once (tox does this on install)"
        )
    log = Path(log) if log is not None else out.with_name(out.name + ".log")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the sdist's own gguf-py, matched to its converter
    argv = [python, "-m", "pytest_servecert.models.gguf_convert", str(converter),
            str(model_dir), "--outfile", str(out), "--outtype", outtype]  # fmt: skip
    try:
        with open(log, "wb") as handle:
            done = subprocess.run(
                argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, timeout=timeout_s, check=False,
            )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise GGUFError(
            f"converting {model_dir} to GGUF took over {timeout_s:g} s (log: {log})"
        ) from None
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        from ..serving.engine import read_log_tail, reason_from_log

        reason = reason_from_log(read_log_tail(log))
        raise GGUFError(f"converting {model_dir} to GGUF failed: {reason} (log: {log})")
    log.unlink(missing_ok=True)
    return out


def _check_source(model_dir: Path, outtype: str) -> None:
    if outtype not in OUTTYPES:
        raise GGUFError(f"GGUF outtype {outtype!r}: expected one of {', '.join(OUTTYPES)}")
    if not (model_dir / "config.json").is_file():
        raise GGUFError(f"{model_dir}: not a Hugging Face model directory (no config.json)")


def resolve_gguf(path: str) -> Path:
    """A model reference for the llama.cpp engine -> a GGUF file.

    ``embedded:<kind>`` and Hugging Face directories are converted (cached); a ``.gguf`` file
    is used as it is.
    """
    if path.startswith("embedded:"):
        from .recipes import ensure_model

        return ensure_gguf(ensure_model(path.split(":", 1)[1]))
    p = Path(path)
    if p.is_file() and p.suffix == ".gguf":
        return p
    if p.is_dir():
        return ensure_gguf(p)
    raise GGUFError(
        f"model path {path!r}: expected a .gguf file, a Hugging Face model directory or 'embedded:target'"
    )


def gguf_parameter_count(path: str | Path) -> int | None:
    """Parameters in a GGUF file (tensor element counts; ``None`` without the gguf package)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    return sum(int(t.n_elements) for t in GGUFReader(str(path)).tensors) or None


class _locked:
    """Exclusive ``fcntl`` lock on ``<path>.lock`` (one converter per output at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        self.handle = open(self.path, "a+")  # closed in __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_servecert.models.gguf", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "fetch-converter",
        help="extract convert_hf_to_gguf.py from the installed llama-cpp-python's sdist",
    )
    convert = sub.add_parser("convert", help="convert (or reuse) a model; prints the GGUF path")
    convert.add_argument(
        "model", help="a Hugging Face model directory or embedded:target / embedded:draft"
    )
    convert.add_argument("--outtype", choices=OUTTYPES, default="f32")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-converter":
            print(fetch_converter())
        else:
            model = args.model
            if model.startswith("embedded:"):
                from .recipes import ensure_model

                model = ensure_model(model.split(":", 1)[1])
            print(ensure_gguf(model, outtype=args.outtype))
    except GGUFError as exc:
        print(f"servecert: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
