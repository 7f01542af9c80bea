"""``SignalGuard.holding``: a Ctrl-C that lands inside a store request is raised after it, never inside
(an MLflow SQLite read cut in the middle keeps its lock, and the run's final status then fails)."""

from __future__ import annotations

import signal

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
