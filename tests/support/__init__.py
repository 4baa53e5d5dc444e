"""Test support shared by the suites: real processes on loopback, always cleaned up."""
