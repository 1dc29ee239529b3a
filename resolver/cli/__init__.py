"""The ``cid`` command: one module per subcommand."""
