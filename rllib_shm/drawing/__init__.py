"""Drawings of what a memory did over one episode (numpy + matplotlib only; no torch, no Ray).

- ``recording``: ``MemoryRecording`` (M_t, C_t, rewards, phases of one episode), ``vanishing_fraction``;
- ``timeline``: phases as spans, phase-aware default steps, phase shading of time axes;
- ``retention``: the cue columns, their calibration, log ∏C and the cue content held over time;
- ``figures``: ``draw_memory`` writes every figure, the GIF and summary.json into a directory.
"""

from rllib_shm.drawing.figures import FILES, MAX_PANELS, draw_memory
from rllib_shm.drawing.recording import MemoryRecording, vanishing_fraction
from rllib_shm.drawing.timeline import default_steps

__all__ = ["FILES", "MAX_PANELS", "MemoryRecording", "default_steps", "draw_memory", "vanishing_fraction"]
