"""Helpers shared by the tests: loopback ports, peer programs, waiting for servers."""
