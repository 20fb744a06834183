"""``python -m fpufuzz``: the same as the ``fpufuzz`` command."""

import sys

from fpufuzz.cli import main

sys.exit(main())
