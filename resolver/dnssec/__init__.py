"""DNSSEC validation: trust anchors, RRset signatures, DS→DNSKEY links, NSEC denial proofs.

Pure functions over dnspython objects and an explicit clock; no I/O.
"""
