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


CORRECTIONS = ("benjaminiHochberg", "bonferroni", "none")
NULL_REPLICATES = 100  # random splits per categorical column for its no-change baseline


def adjust_pvalues(pvalues: np.ndarray, method: str) -> np.ndarray:
    """Per-feature p-values corrected for testing every feature at once.

    Without it, one of three unchanged columns falls under p < 0.05 in 14% of checks, and with
    `datasetShare` 0.3 that one column is dataset drift. NaN (a column with no values) is not a
    test: it stays NaN and does not count towards the number of tests.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-testing correction {method!r}; one of {', '.join(CORRECTIONS)}")
    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full(pvalues.shape, np.nan)
    tested = np.isfinite(pvalues)
    if not tested.any():
        return adjusted
    if method == "benjaminiHochberg":
        adjusted[tested] = stats.false_discovery_control(pvalues[tested], method="bh")
    elif method == "bonferroni":
        adjusted[tested] = np.minimum(pvalues[tested] * tested.sum(), 1.0)
    else:
        adjusted[tested] = pvalues[tested]
    return adjusted


def _js_divergences(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence (bits) of two stacks of count vectors."""
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    mid = (p + q) / 2.0
    return np.maximum(0.5 * (special.rel_entr(p, mid).sum(axis=-1) + special.rel_entr(q, mid).sum(axis=-1))
                      / np.log(2), 0.0)


def _psis(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise PSI as `psi`; NaN in p marks a category a row does not have."""
    present = ~np.isnan(p)
    p, q = np.where(present, p, 0.0), np.where(present, q, 0.0)
    p = np.clip(p / p.sum(axis=-1, keepdims=True), EPSILON, None)
    q = np.clip(q / q.sum(axis=-1, keepdims=True), EPSILON, None)
    return np.sum(np.where(present, (q - p) * np.log(q / p), 0.0), axis=-1)


def categorical_noise(expected_counts: np.ndarray, actual_counts: np.ndarray, replicates: int = NULL_REPLICATES,
                      seed: int = 0) -> tuple[float, float]:
    """Mean Jensen-Shannon divergence (bits) and mean PSI over the reference's categories that no change
    would show at these sizes.

    Both statistics are biased upwards by sampling noise, roughly by (k - 1)(1/n + 1/m): an
    unchanged column of 10,000 levels shows a JS distance of 0.06 at a million rows a side and
    0.28 at 50,000. Splitting the pooled rows again at random into m and n (a permutation, drawn
    as a multivariate hypergeometric per replicate) measures that bias for this n, k and shape,
    sparse tails included; as in the observed statistic, categories a replicate's reference lacks
    are left out (they are the unseen-category rule's). A plug-in resample of the reference shares
    alone misses the tail the reference never saw: it read 0.24 where unchanged Zipf columns of
    10,000 levels showed 0.28 (50,000 rows a side).
    """
    pooled = (np.asarray(expected_counts) + np.asarray(actual_counts)).astype(np.int64)
    pooled = pooled[pooled > 0]
    m, total = int(np.sum(expected_counts)), int(pooled.sum())
    if len(pooled) < 2 or m == 0 or m == total:
        return 0.0, 0.0
    rng = np.random.default_rng([seed, m, total, len(pooled)])
    chunk = max(1, 1_000_000 // len(pooled))  # bounded memory for very many levels
    replicates = int(np.clip(4_000_000 // len(pooled), 20, replicates))
    divergences, psis = [], []
    for start in range(0, replicates, chunk):
        reference = rng.multivariate_hypergeometric(pooled, m, size=min(chunk, replicates - start),
                                                    method="marginals").astype(float)
        current = np.where(reference > 0, pooled - reference, 0.0)
        usable = current.sum(axis=1) > 0
        reference, current = reference[usable], current[usable]
        divergences.append(_js_divergences(reference, current))
        psis.append(_psis(np.where(reference > 0, reference, np.nan), current))
    divergence, psi_values = np.concatenate(divergences), np.concatenate(psis)
    return (float(divergence.mean()) if len(divergence) else 0.0,
            float(np.nanmean(psi_values)) if len(psi_values) else 0.0)


def net_of_noise(value: float, noise: float) -> float:
    """An effect with the part no change would show taken out (floored at 0); NaN stays NaN."""
    return float(max(value - noise, 0.0)) if np.isfinite(value) else float("nan")


def missing_mass(reference_counts: np.ndarray) -> float:
    """Good-Turing estimate of the share of new rows in categories the reference never saw.

    A long-tailed column shows new categories without any change: with m reference rows of which
    f1 categories were seen once, about f1/m of fresh rows fall outside the reference.
    """
    counts = np.asarray(reference_counts)
    total = counts.sum()
    return float(np.sum(counts == 1) / total) if total else 0.0
