"""``python -m telediag`` runs the command line."""

import sys

from telediag.cli import main

sys.exit(main())
