"""The embedded default: Redis Cluster nodes as ``redis-server`` processes on loopback."""
