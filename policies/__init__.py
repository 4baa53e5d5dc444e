"""The policy core of Headroom: pure Python, no I/O.

Calendars, history series, forecasting, the capacity model, the planner, policy
validation and the backtest simulator. The CLI, the operator, the embedded local
mode and the simulator all call into this package unchanged.
"""
