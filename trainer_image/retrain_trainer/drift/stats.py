"""Drift statistics computed from counts, so the current data can be streamed in batches.

Numeric columns are compared with a sorted reference sample `r` (the profile keeps it): for
every current batch we only count, per reference point, how many current values lie below
and at-or-below it, plus the tail mass outside the reference range. From those counts the
two-sample Kolmogorov-Smirnov statistic is exact (the supremum of |F_ref - F_cur| is reached
at reference points or just before them), and Wasserstein-1 is exact up to the position of
current values between two adjacent reference points.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

EPSILON = 1e-4  # proportion floor for PSI and Jensen-Shannon: empty bins do not make infinities


def ks_statistic(reference: np.ndarray, below: np.ndarray, at_or_below: np.ndarray, n: int) -> float:
    """sup |F_ref - F_cur| given, per sorted reference point, counts of current values < and <= it."""
    m = len(reference)
    if m == 0 or n == 0:
        return float("nan")
    f_ref = np.searchsorted(reference, reference, side="right") / m  # F_ref at each reference point
    f_ref_before = np.searchsorted(reference, reference, side="left") / m  # F_ref just before it
    f_cur = at_or_below / n
    f_cur_before = below / n
    return float(max(np.max(np.abs(f_ref - f_cur)), np.max(np.abs(f_ref_before - f_cur_before))))


def ks_pvalue(statistic: float, m: int, n: int) -> float:
    """Asymptotic two-sided p-value (Kolmogorov distribution), as scipy's ks_2samp(method='asymp').

    SciPy's exact method costs 0.3-0.5 s per call near n = 500k; the asymptotic one is what
    large samples need anyway.
    """
    if not np.isfinite(statistic) or m == 0 or n == 0:
        return float("nan")
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(en)) if en < 10000 else
                         special.kolmogorov(np.sqrt(en) * statistic), 0.0, 1.0))


def wasserstein(reference: np.ndarray, below: np.ndarray, at_or_below: np.ndarray, n: int,
                left_tail_sum: float, right_tail_sum: float,
                gap_excess: np.ndarray) -> float:
    """W1 = integral |F_ref - F_cur|.

    On each gap between adjacent reference points F_ref is constant, and the integral of F_cur
    follows from the sum of (r[i+1] - x) over the current values x inside the gap. Where F_cur stays on
    one side of F_ref the gap's term is exact; where it crosses F_ref inside the gap (rare at
    profile sample sizes) the term is a lower bound.
    """
    m = len(reference)
    if m == 0 or n == 0:
        return float("nan")
    f_ref = np.searchsorted(reference, reference[:-1], side="right") / m
    gaps = np.diff(reference)
    start = at_or_below[:-1] / n  # F_cur on entering the gap
    end = below[1:] / n  # F_cur just before leaving it
    # Over a gap, F_cur = start + (values passed so far) / n: its integral is start * gap plus, per
    # value x inside, (r[i+1] - x) / n; gap_excess holds that sum.
    integral_cur = start * gaps + gap_excess / n
    inner = np.abs(f_ref * gaps - integral_cur)
    crossing = (f_ref < end) & (f_ref > start)
    # Where the CDFs cross inside a gap, split at the crossing assuming evenly spread values.
    if crossing.any():
        low, high, level, width = start[crossing], end[crossing], f_ref[crossing], gaps[crossing]
        share = (level - low) / np.where(high > low, high - low, 1.0)
        inner[crossing] = width * (share * (level - low) / 2 + (1 - share) * (high - level) / 2)
    # Outside the reference range F_ref is 0 (left) or 1 (right): the area is the current tail mass.
    return float(inner.sum()) + (left_tail_sum + right_tail_sum) / n


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    if expected.sum() == 0 or actual.sum() == 0:
        return float("nan")
    p = np.clip(expected / expected.sum(), EPSILON, None)
    q = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def chi_squared(expected_counts: np.ndarray, actual_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity on the 2 x K table (as scipy's chi2_contingency, no correction)."""
    keep = (expected_counts + actual_counts) > 0
    table = np.vstack([expected_counts[keep], actual_counts[keep]]).astype(float)
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof))


def jensen_shannon(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors' distributions."""
    if expected_counts.sum() == 0 or actual_counts.sum() == 0:
        return float("nan")
    p = expected_counts / expected_counts.sum()
    q = actual_counts / actual_counts.sum()
    mid = (p + q) / 2.0
    divergence = 0.5 * (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / np.log(2)
    return float(np.sqrt(max(divergence, 0.0)))
