"""``python -m modelshield``: the same command line as the ``modelshield`` script."""

import sys

from modelshield.cli import main

if __name__ == "__main__":
    sys.exit(main())
