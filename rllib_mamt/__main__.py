"""``python -m rllib_mamt`` = the ``rllib`` command (for a PATH with another ``rllib``)."""

import sys

from rllib_mamt.cli import main

sys.exit(main())
