"""`python -m alignui` (see alignui.cli.main)."""

import sys

from alignui.cli.main import main

sys.exit(main())
