"""``python -m flexopt.cli``: the ``flexopt`` command."""

import sys

from flexopt.cli import main

sys.exit(main())
