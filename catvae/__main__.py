"""`python -m catvae` is the `catvae` command."""

import sys

from catvae.cli import main

sys.exit(main())
