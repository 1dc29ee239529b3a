"""Authoritative side, in the order of a zone's life: load → sign → serve."""
