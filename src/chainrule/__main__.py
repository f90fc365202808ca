"""``python -m chainrule``: the command line."""

from chainrule.cli.main import main

raise SystemExit(main())
