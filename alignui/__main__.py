"""`python -m alignui` (see alignui.cli)."""

import sys

from alignui.cli import main

sys.exit(main())
