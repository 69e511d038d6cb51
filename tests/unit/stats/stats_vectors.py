"""Reference vectors for the statistics core, copied from ``shared/reference/``.

Each vector carries its id from the reference documents: ``TV152-*`` / ``TV145-*`` from
seed-tr152-tr145.md §4 (TR152 / TR145), ``TV-*`` from seed-conclusive-a.md §3 (seed 002/003).
Unless noted, the status there is VERIFIED (recomputed with scipy from the report's own inputs).
``tol`` is half a unit of the last printed digit unless the reference asks for another.
"""

from __future__ import annotations

# --- exact two-sided McNemar / sign test: (id, b, c, p, tol) -------------------------------
MCNEMAR_EXACT = [
    ("TV152-1#1", 3, 0, 0.25, 1e-12),
    ("TV152-1#2", 2, 1, 1.0, 1e-12),
    ("TV152-1#5", 2, 0, 0.5, 1e-12),
    ("TV152-1#8", 0, 1, 1.0, 1e-12),
    ("TV152-1#9", 1, 0, 1.0, 1e-12),
    ("TV152-2", 0, 0, 1.0, 0.0),
    ("TV152-6-qwen1.5b", 4, 3, 1.0, 1e-12),  # DERIVED aggregate, not tested in the report
    ("TV152-6-qwen3b", 13, 3, 0.0213, 5e-5),  # DERIVED aggregate, not tested in the report
    ("TV145-1-llama1b", 17, 16, 1.0, 1e-12),
    ("TV145-1-llama3b", 18, 14, 0.596615, 5e-7),
    ("TV145-1-qwen", 45, 35, 0.314307, 5e-7),
    ("TV145-2-llama1b", 13, 12, 1.0, 1e-12),
    ("TV145-2-llama3b", 14, 6, 0.115318, 5e-7),
    ("TV145-2-qwen", 70, 37, 0.001840, 5e-7),
    ("TV145-5-llama1b", 5, 1, 0.21875, 1e-12),
    ("TV145-5-llama3b", 0, 0, 1.0, 0.0),
    ("TV-08", 10, 1, 0.011719, 5e-7),
    ("TV-10", 4, 0, 0.125, 1e-12),
    ("TV-10b-a", 1, 1, 1.0, 1e-12),
    ("TV-10b-b", 2, 1, 1.0, 1e-12),
    ("TV-10c-a", 3, 1, 0.625, 1e-12),
    ("TV-10c-b", 2, 2, 1.0, 1e-12),
]

# --- TR145 Edwards continuity-corrected chi2: (id, b, c, statistic, p_asymptotic) ----------
MCNEMAR_CHI2_CC = [
    ("TV145-1-llama1b", 17, 16, 0.0, 1.0),
    ("TV145-1-llama3b", 18, 14, 0.28125, 0.595883),
    ("TV145-1-qwen", 45, 35, 1.0125, 0.314305),
    ("TV145-5-llama1b", 5, 1, 1.5, 0.220671),
    ("TV145-5-llama3b", 0, 0, 0.0, 1.0),
]

# Wrong alternatives for (3, 0) that an implementation might produce (TV152-1 notes).
MCNEMAR_3_0_WRONG = {"mid_p": 0.125, "chi2_cc": 0.2482, "chi2_no_cc": 0.0833}

# --- sign test ----------------------------------------------------------------------------
# TV152-5: 17 degraded vs 6 improved.
SIGN_TV152_5 = {"b": 17, "c": 6, "p": 0.034690,
                "wrong": {"one_sided": 0.017345, "mid_p": 0.022656, "chi2_cc": 0.037056}}
SIGN_TV152_5_CHI2_NO_CC_P = 0.021810
# TV145-8: (id, unsafe, safe, p_two_sided, tol)
SIGN_TV145_8 = [
    ("TV145-8-llama1b", 17, 16, 1.0, 5e-4),
    ("TV145-8-llama3b", 18, 14, 0.597, 5e-4),
    ("TV145-8-qwen", 45, 35, 0.314, 5e-4),
    ("TV145-8-pooled", 80, 65, 0.244884, 5e-7),
]
SIGN_TV145_8_ONE_SIDED_WRONG = 0.122442  # E145-2: the withdrawn one-sided p
# TV-11 (seed-conclusive-a I-2): 87 vs 46, "z ≈ 3.55, p ≈ 0.0004"; use p in [0.0003, 0.0005].
SIGN_TV11 = {"b": 87, "c": 46, "z": 3.5552, "p_exact": 0.000477, "p_normal": 0.000378}

# --- matched-pairs Haldane OR, Wald CI: (id, sum_b, sum_c, or, ci_low, ci_high, tol) ------
MATCHED_OR = [
    ("TV152-4", 17, 6, 2.692308, 1.094285, 6.623978, 5e-7),  # z = 1.96 full precision
    ("TV-01", 12, 15, 0.8065, 0.3828, 1.6989, 5e-5),
    ("TV-02", 87, 46, 1.8817, 1.3185, 2.6855, 5e-5),
    # TV-03 is published as 2.69 [1.09, 6.62]; the reference's 4-dp "6.6239" used z = 1.959964.
    ("TV-03", 17, 6, 2.69, 1.09, 6.62, 5e-3),
    ("TV-04", 79, 20, 3.878, 2.386, 6.302, 5e-4),
    ("TV-05", 7, 15, 0.484, 0.202, 1.157, 5e-4),
    ("TV-06", 1, 11, 0.130, 0.024, 0.715, 5e-4),
    ("TV-07a", 37, 30, 1.230, 0.762, 1.983, 5e-4),
    ("TV-07b", 58, 42, 1.376, 0.927, 2.043, 5e-4),
]
MATCHED_OR_TV152_4_EXTRA = {"log_or": 0.990399, "se": 0.459335}
# TV152-4 negative control: without Haldane 2.8333 [1.1171, 7.1862] (doesn't match the report).
MATCHED_OR_TV152_4_NO_HALDANE = (2.8333, 1.1171, 7.1862)
# TV-01 negative: the raw-count SE 1/Σb + 1/Σc gives [0.3775, 1.7228].
MATCHED_OR_TV01_RAW_SE_CI = (0.3775, 1.7228)
# seed-conclusive-a §3.1 DERIVED per-model values (not published). Computed there with
# z = 1.959964, so at z = 1.96 they agree to 3 dp only: (id, b, c, or, lo, hi).
MATCHED_OR_DERIVED = [
    ("TV-04-qwen1.5b", 50, 16, 3.0606, 1.7557, 5.3355),
    ("TV-04-qwen3b", 29, 4, 6.5556, 2.4313, 17.6762),
    ("TV-05-llama1b", 5, 11, 0.4783, 0.1731, 1.3212),
    ("TV-05-llama3b", 2, 4, 0.5556, 0.1184, 2.6071),
]
# TR145 per-model McNemar OR (Haldane–Anscombe), TV145-1 / TV145-5: (id, b, c, or)
MCNEMAR_OR_HA = [
    ("TV145-1-llama1b", 17, 16, 1.0606),
    ("TV145-1-llama3b", 18, 14, 1.2759),
    ("TV145-1-qwen", 45, 35, 1.2817),
    ("TV145-5-llama1b", 5, 1, 3.6667),
    ("TV145-5-llama3b", 0, 0, 1.0),
]

# --- TR145 unpaired MH with RBG variance --------------------------------------------------
# TV145-6: tables (fp8 unsafe, fp8 safe, fp16 unsafe, fp16 safe).
MH_RBG_TV145_6 = {"tables": [[7, 93, 3, 97], [1, 99, 1, 99]], "or": 2.058201,
                  "se_log": 0.623460, "ci": (0.606440, 6.985348),
                  # computed in the reference with z = 1.959964: compare at 1e-4
                  "wrong_orientation": (0.4859, 0.1432, 1.6489)}
# TV145-7 (REPORTED, approximate only, tolerance ±0.005): Phase 2 reconstructed from rates.
MH_RBG_TV145_7 = {"fp16_safe_rate": (0.643, 0.759, 0.787), "n": 518,
                  "discordant": ((17, 16), (18, 14), (45, 35)),
                  "reported": (1.0512, 0.8958, 1.2336), "reconstructed": (1.0505, 0.8962, 1.2314)}

# --- TOST ---------------------------------------------------------------------------------
# TV145-3 paired t: (id, b, c, n, delta, se, p, ci_low, ci_high, equivalent)
TOST_T_TV145_3 = [
    ("TV145-3-llama1b", 13, 12, 485, -0.2062, 1.0319, 0.003511, -1.907, 1.494, True),
    ("TV145-3-llama3b", 14, 6, 485, -1.6495, 0.9200, 0.071382, -3.166, -0.133, False),
    ("TV145-3-qwen", 70, 37, 485, -6.8041, 2.1125, 0.9638, -10.286, -3.323, False),
]
# TV152-1: (row, b, c, n, delta_pp unrounded, delta_pp reported 2dp, t-TOST p)
TV152_1_CELLS = [
    (1, 3, 0, 91, -3.2967, -3.30, 0.5625),
    (2, 2, 1, 88, -1.1364, -1.14, 0.1741),
    (3, 2, 1, 90, -1.1111, -1.11, 0.1654),
    (4, 2, 1, 91, -1.0989, -1.10, 0.1612),
    (5, 2, 0, 87, -2.2989, -2.30, 0.3327),
    (6, 2, 0, 92, -2.1739, -2.17, 0.2951),
    (7, 2, 0, 91, -2.1978, -2.20, 0.3025),
    (8, 0, 1, 91, 1.0989, 1.10, 0.0435),
    (9, 1, 0, 88, -1.1364, -1.14, 0.0523),
    (10, 0, 1, 91, 1.0989, 1.10, 0.0435),
    (11, 1, 0, 90, -1.1111, -1.11, 0.0463),
    (12, 0, 1, 89, 1.1236, 1.12, 0.0492),
]
TV152_1_T_TOST_PASS_ROWS = {8, 10, 11, 12}
TV152_N_CONCORDANT_CELLS = 60  # TV152-2
# TV145-4 / §4.3: summary-level t-TOST, and E145-7 ("fails by 0.09pp" vs CI misses by 2.91).
TOST_SUMMARY_TV145_4 = {"delta": -3.09, "se": 1.711, "df": 517, "p": 0.521,
                        "ci": (-5.91, -0.27), "excess": 2.91}

# --- Holm ---------------------------------------------------------------------------------
HOLM_TV152_3 = [0.25] + [0.5] * 3 + [1.0] * 68  # 72-cell family; 0 rejections, min adj 1.0
HOLM_TV145_1 = {"pvalues": [1.0, 0.596615, 0.314307], "sorted_adjusted": (0.943, 1.0, 1.0)}

# --- effect sizes -------------------------------------------------------------------------
# TV145-10 Cohen's d (FP8 − FP16, pooled SD, ddof=1). (id, n, fp16, fp8, d) for ✓/~ rows.
COHEN_D_TV145_10 = [
    ("TV145-10-advbench-l1b", 100, 0.650, 0.690, 0.085),
    ("TV145-10-advbench-l3b", 100, 0.790, 0.760, -0.072),
    ("TV145-10-advbench-qwen", 100, 0.980, 0.920, -0.277),
    ("TV145-10-jbb-l1b", 50, 0.520, 0.560, 0.080),
    ("TV145-10-jbamp-qwen", 120, 0.575, 0.575, 0.000),
    ("TV145-10-truthfulqa-l1b", 50, 0.460, 0.480, 0.040),
    ("TV145-10-truthfulqa-l3b", 50, 0.560, 0.520, -0.080),
    ("TV145-10-truthfulqa-qwen", 50, 0.510, 0.510, 0.000),
    ("TV145-10-arc-l1b", 200, 0.365, 0.360, -0.010),
    ("TV145-10-arc-l3b", 200, 0.675, 0.630, -0.094),
    ("TV145-10-arc-qwen", 200, 0.740, 0.615, -0.269),
    ("TV145-10-mmlu-l1b", 285, 0.316, 0.302, -0.030),
    ("TV145-10-mmlu-qwen", 285, 0.583, 0.554, -0.058),
]
# MISMATCH rows: the report's d does not follow from its own means (non-binary scores or
# rounded means). (id, n, fp16, fp8, reported, recomputed in the reference)
COHEN_D_TV145_10_MISMATCH = [
    ("TV145-10-jbb-l3b", 50, 0.660, 0.720, 0.131, 0.129),
    ("TV145-10-jbb-qwen", 50, 0.740, 0.600, -0.295, -0.298),
    ("TV145-10-bbq-qwen", 198, 0.899, 0.889, -0.020, -0.032),
]

# --- κ ------------------------------------------------------------------------------------
KAPPA_TV12 = {"p_o": 0.8480, "p_e": 0.5076, "n": 12809, "kappa_from_rounded": 0.6913,
              "kappa_published": 0.6917, "tol": 0.001}
KAPPA_TV13 = {"n": 1878, "kappa": -0.00053, "pabak": 0.99787}

# --- spread and CRI -----------------------------------------------------------------------
SPREAD_TV152_7 = {"max": 1.1236, "min": -3.2967, "spread": 4.4203, "spread_from_2dp": 4.42}
# TV-15: per-context (min, max) cell deltas of TR152 v2; spread 2.99 <= 3 => H2 rejected.
SPREAD_TV15_MINMAX = {
    "baseline": (-1.02, 0.76),
    "batch_size=8": (-1.02, 0.26),
    "batch_size=32": (-1.51, 0.26),
    "prefix_caching=on": (-1.02, 0.76),
    "temperature=0.7": (-2.23, 0.26),
    "temperature=1.0": (-2.21, 0.51),
}
CRI_TV20 = [(-48.928, "catastrophic"), (-32.837, "catastrophic"), (-25.521, "catastrophic"),
            (14.0, "catastrophic"), (0.15, "robust")]

# --- power --------------------------------------------------------------------------------
# TV145-9: (id, p, n, mde computed in the reference, mde reported)
MDE_TV145_9 = [
    ("TV145-9-P1-safety", 0.7294, 1554, 4.47, 4.5),
    ("TV145-9-P1-capability", 0.5223, 1455, 5.19, 5.2),
    ("TV145-9-P2-safety", 0.7159, 1554, 4.53, 4.5),
    ("TV145-9-P5-turn5", 0.9700, 400, 3.38, 3.4),
    ("TV145-9-P3-l1b-auto", 0.3895, 1000, 6.11, 6.1),
    ("TV145-9-P3-l1b-fp8", 0.4020, 1000, 6.14, 6.1),
    ("TV145-9-P3-l3b-auto", 0.7035, 1000, 5.72, 5.7),
    ("TV145-9-P3-l3b-fp8", 0.7075, 1000, 5.70, 5.7),
]
MDE_TV145_9_ONE_SAMPLE_WRONG = 3.16  # sqrt(p(1-p)/n) form for P1 safety
