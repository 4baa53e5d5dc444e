"""The Headroom operator: kopf handlers over level-triggered reconcilers.

``runtime.py`` starts it (``headroom operator run``): kube config, leader election
(``leader.py``, a coordination.k8s.io Lease), the health/metrics port
(``health.py``) and kopf with one handler module per kind (``rediscluster_kopf.py``
over ``rediscluster.py``; ``capacitypolicy.py``). Handlers only translate kopf's
calls into one ``reconcile()`` per object and its outcome into kopf's retry classes
(``kopf.TemporaryError(delay=)`` / ``kopf.PermanentError``); the reconcilers use
the same scaler, provisioner and targets as local mode.
"""
