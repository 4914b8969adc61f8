"""Allow ``python -m zoom_oplog_shipper``."""

from zoom_oplog_shipper.cli import entry

entry()
