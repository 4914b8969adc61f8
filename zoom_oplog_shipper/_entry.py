"""Console entry point: answers ``--version`` before importing the rest of the program."""

from __future__ import annotations

import sys

from zoom_oplog_shipper import __version__


def entry() -> None:
    """Run the command line and exit with its code."""
    if sys.argv[1:] == ["--version"]:
        # Agents and package managers call this to probe the install: keep it instant.
        print(f"zoom-oplog-shipper {__version__}")
        raise SystemExit(0)
    try:
        from zoom_oplog_shipper.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C while starting up, before main() catches it: quietly
        code = 130
    raise SystemExit(code)
