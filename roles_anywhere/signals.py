"""Stop a long-running command (``sandbox``, ``serve``) cleanly on SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal


def stop_on_signals() -> list[bool]:
    """A flag that SIGTERM or SIGINT (Ctrl-C) sets; a second signal ends the process at once.

    A plain list, not a threading.Event or KeyboardInterrupt: the handler runs in the main thread
    between two bytecodes, so it must take no lock (Event.set() would wait forever for the lock
    Event.wait() holds) and raise nothing into whatever the main thread was doing.
    """
    stopping: list[bool] = []

    def handle(number: int, _frame: object) -> None:
        stopping.append(True)
        signal.signal(number, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stopping
