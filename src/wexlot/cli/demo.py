from __future__ import annotations

from wexlot.config import Settings


def load_demo_if_empty(settings: Settings) -> None:
    """Filled in by the demo-data work."""
