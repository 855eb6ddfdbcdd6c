"""``python -m ops <command> [flags]``: the same front door as the ``auditstream`` script."""

import sys

from ops.cli import main

sys.exit(main())
