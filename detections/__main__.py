"""``python -m detections``: regenerate detections/converted/ (``--check`` compares only)."""

import sys

from detections.convert import main

sys.exit(main())
