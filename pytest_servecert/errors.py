"""The one root of every error pytest-servecert raises on purpose.

Each part keeps its own class where it is defined (``ConfigError`` in ``config.py``,
``StoreError`` in ``store.py``, ``ServingError`` in ``serving/engine.py`` ...) and derives it
from :class:`ServecertError`, so the pytest plugin and the CLI end a run on a user-facing
problem with one ``except ServecertError`` and one line, and any other exception stays a bug
with its traceback. Dependency-free, so the pure ``stats/`` and ``claims/`` may import it.
"""

from __future__ import annotations

__all__ = ["ServecertError"]


class ServecertError(Exception):
    """A problem pytest-servecert reports in one line: bad config or data, a failed server..."""
