"""Rate-limit expensive repaints (layers, figures) so a fast stream of reports never starves the UI."""

from __future__ import annotations

import time
from collections.abc import Callable

from qtpy.QtCore import QTimer


class Throttle:
    """Runs ``fn`` at most every ``interval`` seconds; a request that comes too soon runs when the
    interval has passed (so the last state is always shown), ``now()`` runs it at once."""

    def __init__(self, fn: Callable[[], None], interval: float, parent=None):
        self.fn = fn
        self.interval = interval
        self._last = -float("inf")
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.now)

    def request(self) -> None:
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self.now()
        elif not self._timer.isActive():
            self._timer.start(int(1000 * wait))

    def now(self) -> None:
        self._timer.stop()
        self._last = time.monotonic()
        self.fn()
