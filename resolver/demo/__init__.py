"""The embedded demo federation (``cid demo``)."""
