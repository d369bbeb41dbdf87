"""Data files shipped inside the package: ``workflow.schema.json``."""

from __future__ import annotations
