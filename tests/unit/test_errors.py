"""One exception root: every error class the package defines derives from ServecertError.

The classes are found by an AST walk of the package sources (any top-level class whose name
ends in ``Error``), so a new error class cannot forget the root.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from pytest_servecert.errors import ServecertError

ROOT = Path(__file__).resolve().parents[2]


def _error_classes() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "pytest_servecert").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [(module, node.name) for node in tree.body
                  if isinstance(node, ast.ClassDef) and node.name.endswith("Error")]
    return found


ERRORS = _error_classes()


def test_the_walk_finds_the_known_error_classes():
    names = {name for _, name in ERRORS}
    assert {"ConfigError", "BatteryError", "StoreError", "JudgeError", "ServingError",
            "CertificateError", "CriDataError", "GGUFError", "UsageError"} <= names


@pytest.mark.parametrize("module,name", ERRORS, ids=[f"{m}.{n}" for m, n in ERRORS])
def test_every_error_class_derives_from_the_root(module, name):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ServecertError), f"{module}.{name} does not derive from ServecertError"


@pytest.mark.parametrize("module,name,builtin", [
    ("pytest_servecert.config", "ConfigError", ValueError),
    ("pytest_servecert.report.certificate", "CertificateError", ValueError),
    ("pytest_servecert.cri", "CriDataError", ValueError),
    ("pytest_servecert.serving.engine", "ServingError", RuntimeError),
    ("pytest_servecert.models.gguf", "GGUFError", RuntimeError),
])
def test_errors_keep_their_builtin_base(module, name, builtin):
    # Callers that caught ValueError / RuntimeError before the root existed still do.
    assert issubclass(getattr(importlib.import_module(module), name), builtin)
