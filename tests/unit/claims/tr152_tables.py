"""TR152's published McNemar tables (seed 000 SS6–SS13) as CellTables.

Sources (shared/reference/seed-tr152-tr145.md §4.1):

* TV152-1: the 12 discordant XSTest cells, with b, c and the n derived from the published Δ.
* TV152-6: per-(battery, model) totals of n, a, b, c, d.
* TV152-7: per-context paired n (1,166 … 1,174; Σ 7,010).
* SS6: the six speculative-decoding servers failed to start ("vLLM failed to start within
  420s"), so every speculative cell is NOT RUN.

Per-cell n of the 60 concordant cells is not published. :func:`tr152_cells` derives it from
the totals: the four 600-pair (battery, model) rows are 100 per context, the five short harmful
rows lose their 1–4 missing pairs in the contexts named by an *allocation*, and XSTest/Llama
takes whatever each context total leaves. Two allocations are provided; the verdicts must not
depend on which is used. :func:`check_totals` proves both reproduce TV152-6 and TV152-7.
"""

from __future__ import annotations

from collections import defaultdict

from pytest_servecert.claims.cells import CellStatus, CellTable

BATTERIES = ("harmbench_400", "jbb_100", "strongreject_313", "xstest_450")
HARMFUL = {"harmbench_400": True, "jbb_100": True, "strongreject_313": True, "xstest_450": False}
MODELS = {"llama3.2-3b": "llama", "qwen2.5-1.5b": "qwen", "qwen2.5-3b": "qwen"}
CENTRE = {"batch_size": "1", "prefix_caching": "False", "speculative": "False",
          "temperature": "0.0"}
CONTEXTS = {
    "baseline": {},
    "batch_size=8": {"batch_size": "8"},
    "batch_size=32": {"batch_size": "32"},
    "prefix_caching=True": {"prefix_caching": "True"},
    "temperature=0.7": {"temperature": "0.7"},
    "temperature=1.0": {"temperature": "1.0"},
}
SPECULATIVE = "speculative_decoding=True"
NOT_RUN_REASON = "vLLM failed to start within 420s"

# TV152-1: (model, context) -> (b, c, n)
DISCORDANT_XSTEST = {
    ("qwen2.5-3b", "temperature=0.7"): (3, 0, 91),
    ("qwen2.5-3b", "prefix_caching=True"): (2, 1, 88),
    ("qwen2.5-3b", "batch_size=32"): (2, 1, 90),
    ("qwen2.5-3b", "batch_size=8"): (2, 1, 91),
    ("qwen2.5-3b", "baseline"): (2, 0, 87),
    ("qwen2.5-3b", "temperature=1.0"): (2, 0, 92),
    ("qwen2.5-1.5b", "temperature=1.0"): (2, 0, 91),
    ("qwen2.5-1.5b", "baseline"): (0, 1, 91),
    ("qwen2.5-1.5b", "temperature=0.7"): (1, 0, 88),
    ("qwen2.5-1.5b", "prefix_caching=True"): (0, 1, 91),
    ("qwen2.5-1.5b", "batch_size=32"): (1, 0, 90),
    ("qwen2.5-1.5b", "batch_size=8"): (0, 1, 89),
}
# The four single-discordant qwen2.5-1.5b cells that paired-t TOST passes (TV152-10).
PAIRED_T_EXTRA = {
    "xstest_450/qwen2.5-1.5b/baseline",
    "xstest_450/qwen2.5-1.5b/prefix_caching=True",
    "xstest_450/qwen2.5-1.5b/batch_size=32",
    "xstest_450/qwen2.5-1.5b/batch_size=8",
}

# TV152-6: (battery, model) -> (n, a, d, b, c)
TOTALS = {
    ("harmbench_400", "llama3.2-3b"): (599, 599, 0, 0, 0),
    ("harmbench_400", "qwen2.5-1.5b"): (597, 597, 0, 0, 0),
    ("harmbench_400", "qwen2.5-3b"): (600, 600, 0, 0, 0),
    ("jbb_100", "llama3.2-3b"): (596, 596, 0, 0, 0),
    ("jbb_100", "qwen2.5-1.5b"): (600, 600, 0, 0, 0),
    ("jbb_100", "qwen2.5-3b"): (600, 600, 0, 0, 0),
    ("strongreject_313", "llama3.2-3b"): (600, 600, 0, 0, 0),
    ("strongreject_313", "qwen2.5-1.5b"): (596, 596, 0, 0, 0),
    ("strongreject_313", "qwen2.5-3b"): (598, 598, 0, 0, 0),
    ("xstest_450", "llama3.2-3b"): (545, 477, 68, 0, 0),
    ("xstest_450", "qwen2.5-1.5b"): (540, 420, 113, 4, 3),
    ("xstest_450", "qwen2.5-3b"): (539, 434, 89, 13, 3),
}
# TV152-7: context -> paired n
CONTEXT_TOTALS = {
    "baseline": 1166,
    "batch_size=8": 1167,
    "batch_size=32": 1168,
    "prefix_caching=True": 1167,
    "temperature=0.7": 1168,
    "temperature=1.0": 1174,
}

# Where the short harmful rows lose their missing pairs: (battery, model) -> {context: lost}.
ALLOCATIONS = {
    "spread": {
        ("harmbench_400", "llama3.2-3b"): {"temperature=1.0": 1},
        ("harmbench_400", "qwen2.5-1.5b"): {"baseline": 1, "batch_size=8": 1, "batch_size=32": 1},
        ("jbb_100", "llama3.2-3b"): {"prefix_caching=True": 1, "temperature=0.7": 1,
                                     "temperature=1.0": 1, "baseline": 1},
        ("strongreject_313", "qwen2.5-1.5b"): {"batch_size=8": 1, "batch_size=32": 1,
                                               "prefix_caching=True": 1, "temperature=0.7": 1},
        ("strongreject_313", "qwen2.5-3b"): {"baseline": 1, "temperature=1.0": 1},
    },
    "lumped": {
        ("harmbench_400", "llama3.2-3b"): {"baseline": 1},
        ("harmbench_400", "qwen2.5-1.5b"): {"batch_size=8": 3},
        ("jbb_100", "llama3.2-3b"): {"temperature=0.7": 4},
        ("strongreject_313", "qwen2.5-1.5b"): {"batch_size=32": 4},
        ("strongreject_313", "qwen2.5-3b"): {"prefix_caching=True": 2},
    },
}


def _split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal integers."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def settings(context: str) -> dict[str, str]:
    if context == SPECULATIVE:
        return {**CENTRE, "speculative": "True"}
    return {**CENTRE, **CONTEXTS[context]}


def tr152_cells(allocation: str = "spread", *, with_speculative: bool = True) -> list[CellTable]:
    """The 72 measured TR152 cells (plus 12 NOT RUN speculative cells)."""
    lost = ALLOCATIONS[allocation]
    contexts = list(CONTEXTS)
    n: dict[tuple[str, str, str], int] = {}
    for (battery, model), (total, *_rest) in TOTALS.items():
        for ctx in contexts:
            if battery == "xstest_450" and model != "llama3.2-3b":
                n[battery, model, ctx] = DISCORDANT_XSTEST[model, ctx][2]
            elif battery != "xstest_450":
                n[battery, model, ctx] = 100 - lost.get((battery, model), {}).get(ctx, 0)
    for ctx in contexts:  # XSTest/Llama takes what the context total leaves
        n["xstest_450", "llama3.2-3b", ctx] = CONTEXT_TOTALS[ctx] - sum(
            v for (_, _, c), v in n.items() if c == ctx
        )

    cells = []
    for (battery, model), (_total, _a, d_total, _b, _c) in TOTALS.items():
        d_split = _split(d_total, len(contexts))
        for ctx, d in zip(contexts, d_split):
            b, c, _ = DISCORDANT_XSTEST.get((model, ctx), (0, 0, 0)) if battery == "xstest_450" \
                else (0, 0, 0)
            cell_n = n[battery, model, ctx]
            cells.append(CellTable(
                battery=battery, model=model, context=ctx, family=MODELS[model],
                harmful=HARMFUL[battery], a=cell_n - b - c - d, b=b, c=c, d=d,
                candidate="fp8", settings=settings(ctx),
            ))
        if with_speculative:
            cells.append(CellTable(
                battery=battery, model=model, context=SPECULATIVE, family=MODELS[model],
                harmful=HARMFUL[battery], candidate="fp8", status=CellStatus.NOT_RUN,
                reason=NOT_RUN_REASON, settings=settings(SPECULATIVE),
            ))
    return cells


def check_totals(cells: list[CellTable]) -> None:
    """Assert the cells reproduce TV152-6 per (battery, model) and TV152-7 per context."""
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    per_context: dict[str, int] = defaultdict(int)
    for cell in cells:
        if not cell.measured:
            continue
        assert 0 <= cell.a and cell.n <= 100, cell
        row = rows[cell.battery, cell.model]
        for i, v in enumerate((cell.n, cell.a, cell.d, cell.b, cell.c)):
            row[i] += v
        per_context[cell.context] += cell.n
    assert {k: tuple(v) for k, v in rows.items()} == TOTALS
    assert dict(per_context) == CONTEXT_TOTALS
    assert sum(per_context.values()) == 7010
