"""``python -m modelshield``: the same command line as the ``modelshield`` script."""

from modelshield.cli import console

if __name__ == "__main__":
    console()
