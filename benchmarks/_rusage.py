"""Run a command; write its wall time, CPU time, peak RSS and exit code to a file (like /usr/bin/time).

``python -I _rusage.py REPORT COMMAND...`` - stdin, stdout and stderr pass straight to the command.

Why a separate small process: Linux keeps the memory high-water mark of a forked image across exec,
so a child forked straight from the benchmark process (hundreds of MB of generated records) would
report the benchmark's size as its own peak RSS. Spawned from this small interpreter instead, the
command's peak is its own (anything under this process's ~10 MB could not be told apart). Wall time
is taken here, from spawn to exit, so this interpreter's own start-up is not counted.
"""

import os
import sys
import time


def main() -> None:
    """Spawn, wait; report ``wall_s cpu_s max_rss_kb exit_code`` on one line."""
    report, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)  # vfork + exec: cheaper than fork of this image
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(report, "w") as handle:
        cpu = usage.ru_utime + usage.ru_stime
        handle.write(f"{wall} {cpu} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\n")


if __name__ == "__main__":
    main()
