"""Statistics in stdlib: median, Mann-Whitney U (exact for small untied samples), bootstrap CI."""
import functools
import math
import random
import statistics


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    ties = []
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@functools.lru_cache(maxsize=None)
def _count(u, m, n):
    """Number of arrangements of m x's and n y's with exactly u (x > y) pairs."""
    if u < 0 or u > m * n:
        return 0
    if m == 0 or n == 0:
        return 1 if u == 0 else 0
    return _count(u - n, m - 1, n) + _count(u, m, n - 1)


def mann_whitney_u(a, b):
    """Two-sided Mann-Whitney U test. Returns (U_a, p_value, rank_biserial, method).

    rank_biserial = 2*U_a/(m*n) - 1, in [-1, 1]: +1 means every a is larger than every b.
    Exact p when there are no ties and m*n <= 2500, else normal approximation with tie correction
    and continuity correction.
    """
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return None, 1.0, 0.0, "empty"
    ranks, ties = _ranks(list(a) + list(b))
    r_a = sum(ranks[:m])
    u_a = r_a - m * (m + 1) / 2
    rbc = 2 * u_a / (m * n) - 1
    if not ties and m * n <= 2500:
        total = math.comb(m + n, m)
        u_lo = min(u_a, m * n - u_a)
        tail = sum(_count(u, m, n) for u in range(int(u_lo) + 1)) / total
        return u_a, min(1.0, 2 * tail), rbc, "exact"
    mu = m * n / 2
    nn = m + n
    tie_term = sum(t ** 3 - t for t in ties) / (nn * (nn - 1))
    sigma = math.sqrt(m * n / 12 * ((nn + 1) - tie_term))
    if sigma == 0:
        return u_a, 1.0, rbc, "normal"
    z = (abs(u_a - mu) - 0.5) / sigma
    p = math.erfc(max(z, 0) / math.sqrt(2))
    return u_a, min(1.0, p), rbc, "normal"


def bootstrap_ci(xs, stat=statistics.median, iters=10000, level=0.95, seed=12345):
    """Percentile bootstrap CI of stat(xs). Deterministic (fixed seed)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    rng = random.Random(seed)
    k = len(xs)
    samples = sorted(stat([xs[rng.randrange(k)] for _ in range(k)]) for _ in range(iters))
    lo = samples[int((1 - level) / 2 * iters)]
    hi = samples[min(iters - 1, int((1 + level) / 2 * iters))]
    return lo, hi
