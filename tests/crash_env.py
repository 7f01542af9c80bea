"""A test environment whose process dies once: CartPole that SIGKILLs its own process (an env
runner) at its ``after_steps``-th step, if it is the first to claim ``kill_file``. ``step_delay``
seconds per step keep iterations long enough for a restarted runner to rejoin within a short test."""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym


class CrashOnce(gym.Wrapper):
    def __init__(self, kill_file: str, after_steps: int = 150, step_delay: float = 0.0) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.kill_file, self.after_steps, self.step_delay, self.steps = kill_file, after_steps, step_delay, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.after_steps:
            try:
                os.unlink(self.kill_file)  # exactly one env, in one process, wins
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.step_delay)
        return self.env.step(action)
