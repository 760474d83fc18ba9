"""Statistics for comparing conditions: bootstrap CIs, permutation tests, effect sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 4000
PERMUTATIONS = 5000


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int


def bootstrap_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP, level: float = 0.95
) -> Estimate:
    """The mean and its percentile bootstrap interval (seeded, so a report is reproducible)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if x.size == 1:
        return Estimate(float(x[0]), float(x[0]), float(x[0]), 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(x.mean()), float(low), float(high), int(x.size))


def permutation_p(
    a: Sequence[float], b: Sequence[float], *, seed: int = 0, resamples: int = PERMUTATIONS
) -> float:
    """Two-sided permutation test of a difference in means; (hits + 1) / (resamples + 1)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan")
    observed = abs(x.mean() - y.mean())
    pooled = np.concatenate([x, y])
    rng = np.random.default_rng(seed)
    hits = 0
    # In chunks, so large studies do not build a resamples x runs matrix at once.
    chunk = max(1, min(resamples, 2_000_000 // pooled.size))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        shuffled = pooled[np.argsort(rng.random((rows, pooled.size)), axis=1)]
        diffs = np.abs(shuffled[:, : x.size].mean(axis=1) - shuffled[:, x.size :].mean(axis=1))
        # A small tolerance so float noise does not count a tie as less extreme.
        hits += int(np.sum(diffs >= observed - 1e-12))
    return (hits + 1) / (resamples + 1)


def sign_flip_p(diffs: Sequence[float], *, seed: int = 0, resamples: int = PERMUTATIONS) -> float:
    """Two-sided paired permutation test (random sign flips) that the mean difference is 0."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return float("nan")
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, d.size))
    hits = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))
    return (hits + 1) / (resamples + 1)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean b - mean a) / pooled standard deviation; nan when it is undefined."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        return float("nan")
    pooled = ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2)
    if pooled == 0:
        return 0.0 if x.mean() == y.mean() else float("nan")
    return float((y.mean() - x.mean()) / np.sqrt(pooled))


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """P(b > a) - P(b < a) over all pairs: from -1 to 1, robust to outliers and scales."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return float("nan")
    greater = int(np.count_nonzero(y[:, None] > x[None, :]))
    less = int(np.count_nonzero(y[:, None] < x[None, :]))
    return float((greater - less) / (x.size * y.size))
