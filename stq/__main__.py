"""``python -m stq`` is the same as the ``stq`` command."""

from __future__ import annotations

from stq.cli import main

raise SystemExit(main())
