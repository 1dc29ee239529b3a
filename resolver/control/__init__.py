"""The control channel of ``cid serve auth`` and ``cid serve resolver`` (``cid ctl``,
spec/service.md, Control): framed JSON requests over a Unix socket, or over loopback TCP with
an HMAC key."""
