"""``python -m cvkit.cli`` runs the ``cvkit`` command."""
import sys

from cvkit.cli._main import main

if __name__ == "__main__":
    sys.exit(main())
