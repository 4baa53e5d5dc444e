"""Scaling strategies the backtest simulator compares, one file each.

Every strategy implements :class:`headroom.policies.simulate.Strategy`:
``reactive_hpa`` (Kubernetes HPA v2 defaults), ``static_peak`` (a constant fleet
sized for the trace's peak), ``oracle`` (perfect foresight, the cheapest schedule
without shortfall) and ``headroom`` (this engine: forecast + planner).
"""
