"""Headroom's Redis Cluster resharder: topology, slot planning, migration and repair.

The CLI (``headroom redis ...``), the local provisioner and the RedisCluster
controller all go through :class:`headroom.controller.redis.resharder.Resharder`.
"""
