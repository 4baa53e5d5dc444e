"""Headroom's Redis room: every Redis Cluster action, one module per concern.

``connection.py`` is the client boundary (the only module that imports redis-py; it
translates redis-py's errors into :mod:`headroom.policies.errors`); ``topology.py``
reads a cluster's shape; ``slotplan.py`` plans slot moves; ``migrate.py`` moves slots
between two masters, ``pairs.py`` runs many pairs at once and ``repair.py`` closes
what a crash left open; ``resharder.py`` is the facade over them (rebalance, drain,
fix). ``membership.py`` sends MEET/FORGET/RESET/REPLICATE and waits for agreement;
``pool.py`` holds the clients of one run; ``nodes.py`` is the provisioner seam;
``observe.py`` and ``heal.py`` are what the scaler sees and what a lost node left
behind; ``scaler.py`` grows or shrinks a cluster to N masters out of the single steps
of ``steps.py`` (``crash.py``: the crash-safety tests' kill hooks); ``reports.py`` holds
the values they all report. The CLI (``headroom redis``, ``headroom local``), the
demo, the scale targets and the RedisCluster controller call the resharder and the
scaler.
"""
