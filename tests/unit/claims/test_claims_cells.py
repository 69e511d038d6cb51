"""CellTable validation and derived figures; scope text; claims/ purity."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from pytest_servecert import claims
from pytest_servecert.claims.cells import CellStatus, CellTable, NoiseFloor, context_settings
from pytest_servecert.claims.scope import axis_coverage, join_words, scope_text


def test_derived_counts() -> None:
    cell = CellTable("xstest_450", "qwen2.5-3b", "temperature=0.7", "qwen", False,
                     a=80, b=3, c=0, d=8, unjudgeable=9)
    assert (cell.n, cell.discordant) == (91, 3)
    assert cell.delta_pp == pytest.approx(-3.2967, abs=1e-4)  # TV152-1 row 1
    assert cell.unjudgeable_rate == pytest.approx(0.09)
    assert cell.subject == "xstest_450/qwen2.5-3b/temperature=0.7"
    assert cell.settings == (("temperature", "0.7"),)
    assert cell.floor() == 0.0


def test_empty_measured_cell_with_unjudgeable_labels() -> None:
    cell = CellTable("x", "m", "baseline", "f", False, unjudgeable=4)
    assert (cell.n, cell.delta_pp, cell.unjudgeable_rate) == (0, 0.0, 1.0)


def test_settings_mapping_is_normalised_and_hashable() -> None:
    cell = CellTable("x", "m", "baseline", "f", False, a=1,
                     settings={"temperature": 0.0, "batch_size": 1})
    assert cell.settings == (("batch_size", "1"), ("temperature", "0.0"))
    assert cell.settings_map == {"batch_size": "1", "temperature": "0.0"}
    assert hash(cell) == hash(CellTable("x", "m", "baseline", "f", False, a=1,
                                        settings={"batch_size": "1", "temperature": "0.0"}))


@pytest.mark.parametrize(
    ("label", "settings"),
    [("baseline", {}), ("batch_size=8", {"batch_size": "8"}),
     ("batch_size=8, temperature=0.7", {"batch_size": "8", "temperature": "0.7"}),
     ("=3", {})],
)
def test_context_settings(label: str, settings: dict) -> None:
    assert context_settings(label) == settings


def test_noise_floor_rescaled_to_the_cells_n() -> None:
    floor = NoiseFloor(a=47, b=2, c=1, d=0)
    assert (floor.n, floor.discordant) == (50, 3)
    same = CellTable("x", "m", "baseline", "f", True, a=50, noise_floor=floor)
    double = CellTable("x", "m", "baseline", "f", True, a=100, noise_floor=floor)
    assert (same.floor(), double.floor()) == (3.0, 6.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": -1}, "cell x/m/baseline: a=-1, expected a non-negative integer"),
        ({"b": True}, "b=True, expected a non-negative integer"),
        ({"c": 1.0}, "c=1.0, expected a non-negative integer"),
        ({"status": CellStatus.NOT_RUN}, "NOT RUN without a reason"),
        ({"status": CellStatus.NOT_RUN, "reason": "oom", "a": 3}, "NOT RUN but has pair counts"),
        ({}, "measured with no pairs; mark it NOT RUN with a reason instead"),
    ],
)
def test_bad_cells(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CellTable("x", "m", "baseline", "f", False, **kwargs)


def test_status_must_be_a_cell_status() -> None:
    with pytest.raises(TypeError, match="status='NOT RUN', expected a CellStatus"):
        CellTable("x", "m", "baseline", "f", False, a=1, status="NOT RUN")  # type: ignore[arg-type]


def test_bad_noise_floor() -> None:
    with pytest.raises(ValueError, match="A/A noise floor: d=-2"):
        NoiseFloor(a=1, b=0, c=0, d=-2)


# -- scope -----------------------------------------------------------------------------------


def cell(context: str, **kw) -> CellTable:
    return CellTable("x", "m", context, "f", False, a=kw.pop("a", 10), **kw)


def test_scope_with_bare_labels_marks_the_centre_as_baseline() -> None:
    cells = [cell("baseline"), cell("batch_size=8"), cell("prefix_caching=True"),
             cell("max_tokens=64")]
    assert scope_text(cells) == (
        "batch size {baseline, 8}, prefix caching {baseline, on}, max tokens {baseline, 64}"
    )


def test_scope_without_axes_lists_contexts() -> None:
    assert scope_text([cell("baseline"), cell("default")]) == "contexts {baseline, default}"
    not_run = CellTable("x", "m", "baseline", "f", False, status=CellStatus.NOT_RUN, reason="r")
    assert scope_text([not_run]) == ""


def test_scope_orders_values_numerically_and_maps_booleans() -> None:
    cells = [cell("t", settings={"temperature": t, "speculative": s})
             for t, s in (("1.0", "yes"), ("0.0", "no"), ("0.7", "none"))]
    coverage = {a.axis: a for a in axis_coverage([c for c in cells])}
    assert coverage["temperature"].measured == ("0.0", "0.7", "1.0")
    assert coverage["speculative"].measured == ("off", "on")
    assert coverage["speculative"].name == "speculative decoding"


def test_join_words() -> None:
    assert [join_words(w) for w in (["a"], ["a", "b"], ["a", "b", "c"])] == [
        "a", "a and b", "a, b, and c"]


def test_lazy_exports() -> None:
    assert claims.Verdict.FAIL.failed and not claims.Verdict.MONITOR.failed
    assert claims.Layer.SERVING_STATE.marker == "layer5"
    assert claims.evaluate_layer5.__module__ == "pytest_servecert.claims.layer5"
    assert claims.apply_gates.__module__ == "pytest_servecert.claims.rules"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        claims.nope  # noqa: B018


# -- purity ----------------------------------------------------------------------------------

FORBIDDEN_IMPORTS = {"pytest", "_pytest", "httpx", "sqlite3", "subprocess", "pluggy"}


def test_claims_package_is_pure() -> None:
    package = Path(claims.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert len(sources) >= 8
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IMPORTS, f"{source.name}: {name}"


@pytest.mark.parametrize(
    "module",
    ["__init__", "model", "cells", "catalogue", "scope", "ladder", "layer2", "layer5", "rules"],
)
def test_each_module_executes_stand_alone(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each module's source runs from scratch in a fresh namespace and defines its ``__all__``.

    Also lets coverage see the module-level lines of ``model`` and ``__init__``: the plugin's
    entry point imports them at pytest start-up, before pytest-cov starts measuring.
    """
    source = Path(claims.__file__).parent / f"{module}.py"
    fresh = types.ModuleType(f"standalone_{module}")
    fresh.__package__ = "pytest_servecert.claims"
    fresh.__file__ = str(source)
    monkeypatch.setitem(sys.modules, fresh.__name__, fresh)  # dataclasses look the module up
    exec(compile(source.read_text(), str(source), "exec"), fresh.__dict__)  # noqa: S102
    namespace = fresh.__dict__
    lazy = module == "__init__"
    for public in namespace.get("__all__", []):
        assert public in namespace or (lazy and public in namespace["_LAZY"]), public
