"""``python -m rllib_shm.cli``: the same as the ``rllib-shm`` command."""

import sys

from rllib_shm.cli.main import main

sys.exit(main())
