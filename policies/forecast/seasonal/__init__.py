"""Robust seasonal baseline: the normal daily and weekly shape plus a level that follows traffic.

Called by :mod:`headroom.policies.forecast.model` (``HeadroomForecaster``), which masks
event windows out before calling :func:`~.baseline.fit_baseline` and adds event uplift on top.

The model works on ``y = log(v + c)`` (``c`` a small floor so zero traffic is allowed):

    y(t) = profile(time of week) + level + residual

* **profile** — robust (winsorised) mean of ``y`` per 15-minute time-of-day bin, plus a
  per time-of-week deviation shrunk towards zero James-Stein style by how noisy it is
  (only with at least a week of history; with less than a day there is no profile). Bins
  are taken in local time of ``tz`` (DST aware), interpolated between bin centres.
* **level** — mean residual over a trailing window whose length (1 h .. 1 week) is chosen
  per lead-time bucket by back-testing on the history itself: short windows win when
  traffic drifts, long ones when it is noisy.
* **residuals** — the back-test errors at each bucket's lead, scaled per local hour of day
  (night traffic is relatively noisier), kept as a sorted sample: empirical quantiles.

Everything is a handful of ``numpy.bincount`` / ``cumsum`` passes: fitting 28 days of
1-minute data takes about two milliseconds, one when a :class:`~.axis.FitAxis` (the work that
depends on the sample times alone) is shared by many series on the same times
(``HeadroomForecaster.fit_many``). :meth:`~.baseline.Baseline.with_recent` refreshes the level from
newer samples without refitting the profile (the simulator's cheap path).

Why per-series numpy and not one 2-D pass over all series: on this project's VMs a page
fault costs several microseconds, and 2-D temporaries beyond glibc's mmap threshold
(128 KiB) fault on every allocation: an elementwise pass over a 64 x 4,032 batch measured
13x slower per series than over one series, whose temporaries are reused from the heap.

The modules (callers import from the module that defines a name):

- ``baseline``: the fitted model (:class:`~.baseline.Baseline`) and the fit, which
  back-tests the level's windows and measures the residuals;
- ``profile``: the daily and weekly profile, its fit and where times fall on it;
- ``level``: the trailing levels and the lead buckets they are chosen for;
- ``axis``: :class:`~.axis.FitAxis`, the work that depends on the sample times alone,
  cached for the batch path (many series on one time axis);
- ``localtime``: UTC offsets of a zone (DST transitions found exactly);
- ``numerics``: bin arithmetic and numpy fast paths.
"""
