"""``python -m zoom_oplog_shipper.simulator``: the simulator without the shipper's CLI."""

import argparse
import sys

from zoom_oplog_shipper.simulator import add_arguments, run


def main() -> int:
    """Parse the ``simulate`` switches and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m zoom_oplog_shipper.simulator",
        description="Zoom operation-logs API simulator for testing pipelines.",
    )
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
