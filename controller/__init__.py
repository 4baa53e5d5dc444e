"""Headroom's contact with the world.

Actuators (scale targets), the Redis Cluster resharder and local provisioner,
metric sources, alert hooks, the control loop shared by the embedded mode and the
operator, and the operator's own metrics. Everything here receives its clients
(or a function) from the caller, so the core stays testable without servers.
"""
