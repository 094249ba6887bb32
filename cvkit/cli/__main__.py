"""``python -m cvkit.cli`` runs the ``cvkit`` command."""
import sys

from cvkit.cli.main import main

sys.exit(main())
