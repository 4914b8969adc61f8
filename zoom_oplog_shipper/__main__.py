"""Allow ``python -m zoom_oplog_shipper``."""

from zoom_oplog_shipper._entry import entry

entry()
