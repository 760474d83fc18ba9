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


@dataclass(frozen=True)
class ChoiceTest:
    """A condition x choice table compared with a permutation test: Pearson's chi-square,
    its p-value under shuffled condition labels, and Cramér's V."""

    chi2: float
    p: float
    cramers_v: float
    n: int  # answers in the table


def _chi2(tables: np.ndarray) -> np.ndarray:
    """Pearson's chi-square of each table (..., conditions, options); empty cells skipped."""
    rows = tables.sum(axis=-1, keepdims=True)
    cols = tables.sum(axis=-2, keepdims=True)
    total = tables.sum(axis=(-2, -1), keepdims=True)
    expected = rows * cols / np.where(total == 0, 1, total)
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(expected > 0, (tables - expected) ** 2 / expected, 0.0)
    return np.asarray(cells.sum(axis=(-2, -1)))


def cramers_v(table: Sequence[Sequence[float]] | np.ndarray) -> float:
    """sqrt(chi2 / (n (min(rows, columns) - 1))) over the non-empty rows and columns: 0 when
    every condition chose alike, 1 when the condition decides the choice; nan if undefined."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    k = min(t.shape) - 1 if t.size else 0
    if k < 1:
        return float("nan")
    return float(np.sqrt(_chi2(t) / (t.sum() * k)))


def choice_test(
    counts: Sequence[Sequence[float]],
    labels: Sequence[int],
    *,
    seed: int = 0,
    resamples: int = PERMUTATIONS,
) -> ChoiceTest:
    """Do the conditions choose differently? `counts`: each run's answers per option;
    `labels`: each run's condition. Runs, not answers, are shuffled between conditions
    (a run's personas answer after the same discussion, so they are not independent)."""
    x = np.asarray(counts, dtype=float).reshape(len(labels), -1)
    y = np.asarray(labels, dtype=int)
    if x.size == 0 or len(set(y.tolist())) < 2:
        return ChoiceTest(float("nan"), float("nan"), float("nan"), int(x.sum()))
    k = int(y.max()) + 1
    table = np.zeros((k, x.shape[1]))
    np.add.at(table, y, x)
    observed = float(_chi2(table))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(resamples, 2_000_000 // max(1, y.size * k)))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        shuffled = y[np.argsort(rng.random((rows, y.size)), axis=1)]
        onehot = (shuffled[:, :, None] == np.arange(k)).astype(float)  # (rows, runs, k)
        tables = np.einsum("brk,ro->bko", onehot, x)
        hits += int(np.sum(_chi2(tables) >= observed - 1e-9))
    return ChoiceTest(observed, (hits + 1) / (resamples + 1), cramers_v(table), int(x.sum()))
