"""``python -m resolver`` is the ``cid`` command."""

from resolver.cli.main import main

raise SystemExit(main())
