"""The pure statistics core of pytest-servecert.

Imports only the standard library, numpy, scipy and statsmodels (``tests/unit/test_purity.py``
enforces it). Every function takes counts or plain sequences and returns one frozen dataclass
from :mod:`.results`; none of them grows with the number of pairs except where it must read
per-item labels or samples.

Conventions, shared by every module (../shared/reference/seed-tr152-tr145.md §2.1):

* **Orientation.** ``b`` = baseline safe & candidate unsafe (the candidate *degraded*),
  ``c`` = the reverse. ``delta_pp = 100 * (c - b) / n`` is candidate minus baseline safe rate
  in percentage points, so negative = candidate worse. Odds ratios are oriented so that
  OR > 1 = candidate worse. Effect sizes are *first minus second* (pass candidate first).
* **alpha is two-sided** everywhere (p-values, Wald and Wilson intervals, κ interval)
  *except* TOST, where ``alpha`` is the level of each one-sided test and the reported
  interval is the ``1 - 2 alpha`` (90 %) interval whose inclusion in the margin is the test.
* **z for Wald intervals** is 1.96 at ``alpha = 0.05``, the value TR145 and TR152 hard-code
  (only it reproduces TR145's RBG bound 6.9853; Phi^-1(0.975) gives 6.9852), and
  ``Phi^-1(1 - alpha/2)`` at any other level. Every result records the ``z`` it used.
* **TOST boundary.** Equivalence needs the interval *strictly* inside ``(-margin, margin)``
  (equivalently p < alpha); zero discordance is equivalent with interval ``[0, 0]``.
* **Undefined is NaN, never an exception**: a κ with ``p_e == 1``, a CRI with < 2 stacks,
  an MH OR with an all-zero cross product. Invalid *input* raises ``ValueError`` naming the
  argument.
"""

from .agreement import cohen_kappa
from .cri import classify_cri, cri
from .effect import cohen_d, cohen_h
from .floor import sampling_floor_test
from .multiplicity import holm
from .paired import mcnemar, sign_test, tost_from_summary, tost_paired
from .paired_exact import pairs_needed_exact, tost_paired_exact
from .pooled import interaction_spread, mantel_haenszel_rbg, matched_pairs_or, pool_discordant
from .power import exact_mcnemar_floor, mde_paired, mde_two_sample, strict_rule_mde
from .proportion import newcombe_difference, wilson_interval
from .results import (
    CohenDResult,
    CohenHResult,
    CriResult,
    DifferenceInterval,
    ExactFloorResult,
    FloorTestResult,
    HolmResult,
    KappaResult,
    McNemarResult,
    MdeResult,
    OddsRatioResult,
    ProportionInterval,
    RtsiResult,
    SignTestResult,
    SpreadResult,
    StrictMdeResult,
    TostResult,
)
from .rtsi import LabelledText, rtsi

__all__ = [
    "CohenDResult",
    "CohenHResult",
    "CriResult",
    "ExactFloorResult",
    "FloorTestResult",
    "HolmResult",
    "KappaResult",
    "LabelledText",
    "McNemarResult",
    "MdeResult",
    "OddsRatioResult",
    "DifferenceInterval",
    "ProportionInterval",
    "RtsiResult",
    "SignTestResult",
    "SpreadResult",
    "StrictMdeResult",
    "TostResult",
    "classify_cri",
    "cohen_d",
    "cohen_h",
    "cohen_kappa",
    "cri",
    "exact_mcnemar_floor",
    "holm",
    "interaction_spread",
    "mantel_haenszel_rbg",
    "matched_pairs_or",
    "mcnemar",
    "mde_paired",
    "mde_two_sample",
    "newcombe_difference",
    "pairs_needed_exact",
    "pool_discordant",
    "sampling_floor_test",
    "rtsi",
    "sign_test",
    "strict_rule_mde",
    "tost_from_summary",
    "tost_paired",
    "tost_paired_exact",
    "wilson_interval",
]
