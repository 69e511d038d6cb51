"""Module boundaries, checked over whatever modules the packages contain.

``stats/`` and ``claims/`` are pure (README "Layout"): no pytest, httpx, sqlite3 or subprocess.
Two independent checks:

* a fresh interpreter imports every module of both packages and reports ``sys.modules``;
* an AST walk of their sources allows only the standard library (minus sqlite3 and
  subprocess), numpy, scipy, statsmodels and the pure packages themselves.

scipy imports ``subprocess`` itself (``scipy._lib._testutils``), so for the runtime check a
forbidden module only counts when importing the allowed libraries alone did not already load
it; the AST walk still rejects any direct import of it from our code.

The rest of the boundaries are AST walks too: the embedded-model builder (``models/``) never
imports ``judges/`` (the judges import it; the prompt both need is ``judge_prompt.py``, which
imports nothing of the project), ``report/`` never imports the runner, and no module imports
another module's ``_private`` names (a ``_private`` module may be imported by its own package).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_PACKAGES = ("pytest_servecert.stats", "pytest_servecert.claims")
FORBIDDEN = ("pytest", "_pytest", "httpx", "sqlite3", "_sqlite3", "subprocess")
ALLOWED_THIRD_PARTY = {"numpy", "scipy", "statsmodels"}
ALLOWED_STDLIB = set(sys.stdlib_module_names) - {"sqlite3", "_sqlite3", "subprocess"}

_SCRIPT = """
import importlib, json, pkgutil, sys
import numpy, scipy, scipy.stats, statsmodels.api
baseline = set(sys.modules)
imported = []
for name in {packages!r}:
    package = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({{"baseline": sorted(baseline), "after": sorted(sys.modules),
                  "imported": imported}}))
"""


@pytest.fixture(scope="module")
def fresh_import():
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(packages=PURE_PACKAGES)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_allowed_libraries_do_not_load_pytest_httpx_or_sqlite3(fresh_import):
    # Keeps the runtime check meaningful: only subprocess may come from the allowed libraries.
    preloaded = set(fresh_import["baseline"]) & set(FORBIDDEN)
    assert preloaded <= {"subprocess"}


def test_importing_the_pure_packages_loads_no_forbidden_module(fresh_import):
    new = set(fresh_import["after"]) - set(fresh_import["baseline"])
    leaked = sorted(m for m in new if m.split(".")[0] in FORBIDDEN)
    assert leaked == [], f"importing {PURE_PACKAGES} loaded {leaked}"
    assert "pytest_servecert.stats.paired" in fresh_import["imported"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Absolute names of every module ``path`` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
                # "from .. import stats" imports the submodule pytest_servecert.stats
                found += [(node.lineno, f"{prefix}.{a.name}" if not node.module else prefix)
                          for a in node.names]
            else:
                found.append((node.lineno, node.module or ""))
    return found


def _sources():
    for package in PURE_PACKAGES:
        yield from sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "pytest_servecert":
        return any(name == p or name.startswith(p + ".") for p in PURE_PACKAGES)
    return top in ALLOWED_STDLIB or top in ALLOWED_THIRD_PARTY


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_sources_import_only_allowed_modules(path):
    bad = [f"line {line}: {name}" for line, name in _imports(path) if not _allowed(name)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_the_stats_package_does_not_import_claims():
    # stats is upstream of claims: nothing downstream reaches back.
    for path in sorted((ROOT / "pytest_servecert/stats").rglob("*.py")):
        for line, name in _imports(path):
            assert not name.startswith("pytest_servecert.claims"), f"{path}:{line}"


@pytest.mark.parametrize("source,expected", [
    ("import subprocess\n", False),
    ("from sqlite3 import connect\n", False),
    ("import httpx as h\n", False),
    ("from _pytest import fixtures\n", False),
    ("from ..store import Store\n", False),
    ("from .. import stats\n", True),
    ("from ..stats import mcnemar\n", True),
    ("import numpy as np\nfrom scipy import stats\n", True),
])
def test_the_ast_check_catches_forbidden_imports(tmp_path, monkeypatch, source, expected):
    # Run the checker on a synthetic module placed inside claims/ to prove it can fail.
    fake_root = tmp_path
    target = fake_root / "pytest_servecert" / "claims" / "fake.py"
    target.parent.mkdir(parents=True)
    target.write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert all(_allowed(name) for _, name in _imports(target)) is expected


# -- boundaries outside the pure core ----------------------------------------------------------


def _package_sources(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def _from_imports(path: Path) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from module import name``, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [(node.lineno, source, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
    return found


def _is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _private_imports(path: Path) -> list[str]:
    """Private names ``path`` imports from another module of the project."""
    importer = _module_name(path)
    own_package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    bad = []
    for line, source, name in _from_imports(path):
        if not source.startswith("pytest_servecert"):
            continue
        target = f"{source}.{name}" if name else source
        parts = target.split(".")
        for i, part in enumerate(parts[1:], start=1):
            if not _is_private(part):
                continue
            owner = ".".join(parts[:i])  # the package or module the private part belongs to
            if owner == own_package:
                continue  # a package's private module, imported by its own modules
            bad.append(f"line {line}: {target}")
            break
    return bad


@pytest.mark.parametrize("path", _package_sources("pytest_servecert"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path):
    assert _private_imports(path) == [], f"{path.relative_to(ROOT)} imports private names"


@pytest.mark.parametrize("source,bad", [
    ("from ..session import _plain\n", True),
    ("from pytest_servecert.serving.stack import _version\n", True),
    ("from ..serving import _gguf_convert\n", True),
    ("from . import _validation as check\n", False),  # stats' own private module
    ("from ._validation import finite\n", False),
    ("from ..session import json_safe\n", False),
    ("from dataclasses import _MISSING_TYPE\n", False),  # not ours
])
def test_the_private_import_check_can_fail(tmp_path, monkeypatch, source, bad):
    target = tmp_path / "pytest_servecert" / "stats" / "fake.py"
    target.parent.mkdir(parents=True)
    target.write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert bool(_private_imports(target)) is bad


def test_the_model_builder_does_not_import_the_judges():
    # judges/embedded.py imports models/ (to build and find the judge); the reverse would be
    # a loop. The judge prompt both sides need lives in the dependency-free judge_prompt.py.
    sources = _package_sources("pytest_servecert.models")
    assert any(p.name == "judge.py" for p in sources)
    for path in sources:
        for line, name in _imports(path):
            assert not name.startswith("pytest_servecert.judges"), f"{path.relative_to(ROOT)}:{line}"


def test_the_judge_prompt_module_imports_nothing_of_the_project():
    path = ROOT / "pytest_servecert" / "judge_prompt.py"
    names = [name for _, name in _imports(path)]
    assert names and all(n.split(".")[0] in ALLOWED_STDLIB | {"__future__"} for n in names), names


def test_the_report_does_not_import_the_runner():
    # The report renders a finished run's public data; the runner's phases are not its API.
    for path in _package_sources("pytest_servecert.report"):
        for line, name in _imports(path):
            assert not name.startswith("pytest_servecert.runner"), f"{path.relative_to(ROOT)}:{line}"
