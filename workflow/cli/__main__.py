"""``python -m workflow.cli``: the same as the ``ledgerflow`` command."""

import sys

from . import main

sys.exit(main())
