"""The ``rllib-shm`` command line: ``main`` (``cli/main.py``) and one module per sub-command
(``train``, ``tune``, ``evaluate``, ``envs``, ``bench``, ``export``), each with ``add_arguments(parser)`` and
``run(args) -> int``. The top layer: it may import every other package, none imports it."""

from rllib_shm.cli.main import main

__all__ = ["main"]
