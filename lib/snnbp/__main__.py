"""``python -m snnbp`` is the ``snnbp`` command."""

from snnbp.cli import main

raise SystemExit(main())
