"""The numerics the seasonal baseline is made of: bins, robust bin means, interpolation on
a circular table, and numpy fast paths (the same results without numpy's Python wrappers
or full-size temporaries)."""

from __future__ import annotations

import numpy as np

from headroom.policies.forecast.seasonal.localtime import IntArray
from headroom.policies.series import FloatArray


def sorted_quantile(values: FloatArray, p: float) -> float:
    """Linear-interpolated quantile of an already sorted array (``np.quantile``'s default)."""
    pos = p * (values.size - 1)
    i = min(int(pos), values.size - 1)
    j = min(i + 1, values.size - 1)
    return float(values[i] + (values[j] - values[i]) * (pos - i))


def fmod(x: FloatArray, period: float) -> FloatArray:
    """``x % period`` for floats; numpy's float ``%`` is an order of magnitude slower."""
    return np.asarray(x - np.floor(x * (1.0 / period)) * period, dtype=np.float64)


def bins(x: FloatArray, period: float, width: float) -> IntArray:
    """Index of the ``width``-second bin of ``x`` within its period."""
    return np.asarray(np.floor(fmod(x, period) * (1.0 / width)), dtype=np.int64)


def bincount(idx: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Weighted ``numpy.bincount`` typed as floats."""
    return np.asarray(np.bincount(idx, weights=weights, minlength=n), dtype=np.float64)


def robust_bin_mean(
    idx: IntArray,
    y: FloatArray,
    w: FloatArray,
    nbins: int,
    k: float = 2.5,
    counts: tuple[FloatArray, FloatArray] | None = None,
    zeroed: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Winsorised mean per bin (values beyond ``k`` sd clipped), count and variance.

    ``y`` must be finite where ``w`` is 0 (the caller zeroes gaps). ``counts``: the
    weight per bin and its floor at 1, when known already. ``zeroed``: ``w`` is 0 or 1
    and ``y`` is 0 where ``w`` is, so ``y * w`` is ``y`` (two products skipped).
    """
    if counts is None:
        n = bincount(idx, w, nbins)
        safe = np.maximum(n, 1.0)
    else:
        n, safe = counts
    yw, yyw = (y, y * y) if zeroed else (y * w, y * y * w)
    mean = bincount(idx, yw, nbins) / safe
    var = np.maximum(bincount(idx, yyw, nbins) / safe - mean**2, 0.0)
    sd = np.sqrt(var)
    # minimum/maximum: np.clip's wrapper costs more than the work on a few thousand values.
    yc = np.minimum(np.maximum(y, (mean - k * sd)[idx]), (mean + k * sd)[idx])
    mean = bincount(idx, yc * w, nbins) / safe
    return mean, n, var


def fill_circular(values: FloatArray, count: FloatArray) -> FloatArray:
    """Bins without data take the circular linear interpolation of their neighbours."""
    have = count > 0
    if bool(have.all()) or not bool(have.any()):
        return values if bool(have.any()) else np.zeros_like(values)
    x = np.arange(values.size, dtype=np.float64)
    return np.asarray(
        np.interp(x, x[have], values[have], period=float(values.size)), dtype=np.float64
    )


def fast_mean(a: FloatArray) -> float:
    """``float(np.mean(a))`` (the same sum and division) without its Python wrapper."""
    return float(np.add.reduce(a) / a.size)


def fast_var(a: FloatArray) -> float:
    """``float(np.var(a))``, the same steps as numpy's, without its Python wrapper."""
    x = a - np.add.reduce(a, keepdims=True) / a.size
    np.multiply(x, x, out=x)
    return float(np.add.reduce(x) / a.size)


def interp_index(pos: FloatArray, n: int) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Neighbouring bins ``a``, ``b`` of ``pos`` on a circular table of ``n`` (centres at
    i + 0.5) and their weights ``1 - f``, ``f``."""
    x = pos - 0.5
    i0 = np.floor(x)
    f = x - i0
    a = i0.astype(np.int64)
    a -= (a // n) * n
    b = a + 1
    b[b == n] = 0
    return a, b, 1 - f, f


def block_log_means(
    vv: FloatArray, floor: float, bounds: tuple[float, float] | None = None
) -> FloatArray | None:
    """Means of ``log(vv + floor)`` over the rows of ``vv`` (blocks of finite samples), as
    logs of products of up to 8 factors: one log per 8 samples instead of one per sample
    (a tenth of the work on 1-minute data; equal within float rounding). ``None`` when a
    product could leave the float range (factors beyond 1e±37; take the logs one by one).
    ``bounds``: a lower and an upper bound of ``vv``, when known.
    """
    k = vv.shape[1]
    if vv.size == 0:
        return None
    lo, hi = bounds if bounds is not None else (float(vv.min()), float(vv.max()))
    if not (1e-37 < lo + floor and hi + floor < 1e37):
        return None
    total: FloatArray | None = None
    for a in range(0, k, 8):
        p = vv[:, a] + floor
        for i in range(a + 1, min(a + 8, k)):
            p *= vv[:, i] + floor
        logs = np.log(p)
        total = logs if total is None else total + logs
    if total is None:
        return None
    return np.asarray(total * (1.0 / k), dtype=np.float64)


def block_means(vv: FloatArray, k: int) -> FloatArray:
    """Means of the rows of ``vv`` (blocks of ``k`` samples) over their finite values.

    Avoids full-size temporaries where it can: on large arrays each one costs page faults.
    """
    fin = np.isfinite(vv)
    if bool(fin.all()):
        vb = vv @ np.full(k, 1.0 / k)  # a BLAS product: much faster than mean(axis=1)
    else:
        cnt = fin.sum(axis=1)
        vb = np.where(fin, vv, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        vb[cnt == 0] = np.nan
    return np.asarray(vb, dtype=np.float64)
