"""Provisioners: the seam that starts and stops the nodes of a Redis Cluster.

The :class:`NodeProvisioner` protocol lives with its consumer, in
``headroom.controller.redis.nodes``; ``local.py`` runs ``redis-server`` processes on
loopback (``headroom local``, the demo) and ``statefulset.py`` runs one StatefulSet pod
per node (the operator's RedisCluster controller). The scaler in
``headroom.controller.redis.scaler`` drives either.
"""
