"""Ctrl-C and SIGTERM for the drivers (``train``, ``tune``): every MLflow run they opened ends KILLED
or FAILED, never RUNNING, however often the user presses Ctrl-C.

``SignalGuard`` turns SIGINT and SIGTERM into an ``Interrupted`` exception (a ``KeyboardInterrupt``
carrying the signal's number: the command line exits 128 + number, 130 for Ctrl-C and 143 for
SIGTERM). Ray's driver would otherwise turn SIGTERM into ``sys.exit`` and end in a native abort.
``guard.final_state()`` is the window in which a driver writes the final status of its runs; the
slow cleanup (``algo.stop``, ``ray.shutdown``) follows it, inside the guard. A second Ctrl-C is
noted and does not cut that cleanup (a few seconds) short; a third one does. ``guard.check()``
between iterations raises a signal whose exception a finalizer swallowed.

Within Tune's ``fit``, Tune's own SIGINT handler stops the trials and saves the experiment state
(resumable); ``SignalGuard(sigterm_as_sigint=True)`` gives SIGTERM the same graceful path, and a
second signal raises ``Interrupted`` at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A driver stopped by a signal; ``signum`` says which (exit code 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(error: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C (also a plain ``KeyboardInterrupt``), 143 for SIGTERM."""
    return 128 + getattr(error, "signum", signal.SIGINT)


class SignalGuard:
    """SIGINT / SIGTERM → ``Interrupted`` while active (main thread only; elsewhere it does nothing).

    The first signal raises ``Interrupted`` (held until the end of ``final_state`` when it comes
    inside it). The second is only noted: the driver is already on its way out, writing the final
    statuses and then cleaning up, and an exception in the middle of Ray's shutdown ends the process
    without exit code or message. A third raises at once: the way out of a cleanup that hangs.

    ``sigterm_as_sigint``: a first SIGTERM is delivered as SIGINT to a SIGINT handler installed over
    this one (Tune's graceful stop during ``fit``) and remembered, so the exit code still says SIGTERM."""

    def __init__(self, sigterm_as_sigint: bool = False) -> None:
        self.sigterm_as_sigint = sigterm_as_sigint
        self.received: int | None = None  # the first signal received
        self.count = 0  # signals received
        self._held: int | None = None  # a first signal that came inside final_state()
        self._holding = False
        self._previous: dict[int, object] = {}
        self._active = False

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
            for sig in SIGNALS:
                signal.signal(sig, self._handle)
            self._active = True
        return self

    def __exit__(self, *exc) -> None:
        if self._active:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._active = False

    def _handle(self, signum: int, frame) -> None:
        self.count += 1
        if self.count == 1:
            self.received = signum
            if self._holding:
                self._held = signum
                return
            graceful = signal.getsignal(signal.SIGINT) != self._handle  # Tune's handler is in place
            if signum == signal.SIGTERM and self.sigterm_as_sigint and graceful:
                signal.raise_signal(signal.SIGINT)  # Tune's graceful stop: trials saved, resumable
                return
            raise Interrupted(signum)
        if self.count == 2:
            return  # noted (count): the first one is already ending the driver
        raise Interrupted(signal.SIGTERM if signal.SIGTERM in (signum, self.received) else signal.SIGINT)

    def check(self) -> None:
        """Raise the ``Interrupted`` of a signal already received, for a driver that is still at work
        after it. That happens when the handler's exception was lost: a handler runs in whatever Python
        code the main thread is in, and where that is a finalizer (``__del__``, a weakref callback;
        building an algorithm drops many objects) Python prints "Exception ignored in ..." and goes on,
        and the second Ctrl-C, only noted, would not stop the driver either. Called between iterations,
        it turns such a lost Ctrl-C into an interruption one iteration late instead of none."""
        if self.received is not None and not self._holding:
            self.count = max(self.count, 1)
            raise Interrupted(self.received)

    def interrupted(self) -> Interrupted:
        """The ``Interrupted`` to raise for a signal a graceful path absorbed (Tune returning from ``fit``
        after its own SIGINT handler took the first Ctrl-C). That signal counts as this guard's first, so
        a second Ctrl-C during the cleanup is only noted, as when the guard took the first itself."""
        if self.received is None:
            self.received = signal.SIGINT
        self.count = max(self.count, 1)
        return Interrupted(self.received)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """A first signal is held while the body runs, and raised afterwards: for a request to a store
        that must not be cut in the middle (an MLflow SQLite query interrupted mid-read keeps its lock,
        and the run's final status can then not be written: "database is locked")."""
        outer, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = outer
        if outer:
            return  # the enclosing window raises what it held
        if self._held is not None:
            held, self._held = self._held, None
            raise Interrupted(held)

    #: the window in which a driver writes its runs' final statuses: a first signal is held until they are written
    final_state = holding
