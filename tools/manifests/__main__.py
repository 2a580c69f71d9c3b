"""``python -m tools.manifests``: see ``tools.manifests.cli``."""

import sys

from tools.manifests.cli import main

sys.exit(main())
