"""``SignalGuard.holding``: a Ctrl-C that lands inside a store request is raised after it, never inside
(an MLflow SQLite read cut in the middle keeps its lock, and the run's final status then fails).
``SignalGuard.check``: a Ctrl-C whose exception a finalizer swallowed still stops the driver."""

from __future__ import annotations

import signal
import sys

import pytest

from rllib_shm.interrupts import Interrupted, SignalGuard


def test_a_signal_inside_holding_is_raised_after_the_body():
    finished = []
    with SignalGuard() as guard, pytest.raises(Interrupted) as raised:
        with guard.holding():
            signal.raise_signal(signal.SIGINT)
            finished.append("request")  # not cut in the middle
        finished.append("after")  # not reached: raised at the end of the window
    assert finished == ["request"] and raised.value.signum == signal.SIGINT


def test_a_window_inside_final_state_leaves_the_raise_to_the_outer_one():
    finished = []
    with SignalGuard() as guard, pytest.raises(Interrupted):
        with guard.final_state():
            with guard.holding():
                signal.raise_signal(signal.SIGTERM)
            finished.append("final status written")
    assert finished == ["final status written"] and guard.received == signal.SIGTERM


def test_outside_holding_a_signal_raises_at_once():
    with SignalGuard() as guard, pytest.raises(Interrupted):
        with guard.holding():
            pass
        signal.raise_signal(signal.SIGINT)
        pytest.fail("not interrupted")


class RaisesInFinalizer:
    """Delivers a signal while its ``__del__`` runs: the handler's exception is lost there (Python
    prints "Exception ignored in ..."), as when Ctrl-C lands in a finalizer during build_algo."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        signal.raise_signal(self.signum)


def test_a_signal_lost_in_a_finalizer_is_raised_by_check(monkeypatch):
    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lost.append)  # where "Exception ignored in ..." goes
    with SignalGuard() as guard:
        finalized = RaisesInFinalizer(signal.SIGINT)
        del finalized  # Ctrl-C, swallowed
        signal.raise_signal(signal.SIGINT)  # the second press: only noted
        assert [type(u.exc_value) for u in lost] == [Interrupted] and guard.count == 2
        with pytest.raises(Interrupted) as raised:
            guard.check()
    assert raised.value.signum == signal.SIGINT


def test_check_without_a_signal_does_nothing_and_inside_holding_leaves_it_to_the_window():
    with SignalGuard() as guard:
        guard.check()
        with pytest.raises(Interrupted), guard.holding():
            signal.raise_signal(signal.SIGTERM)  # held
            guard.check()  # the window raises it at its end, not check
            held = "checked"
    assert held == "checked" and guard.received == signal.SIGTERM
