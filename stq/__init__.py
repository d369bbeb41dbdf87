"""STQ (SimpleTaskQueue): run a DAG of shell commands across many machines.

Importing ``stq`` has no side effects; the version is the only thing here.
"""

from __future__ import annotations

__version__ = "0.1.0"
