"""Logging set-up: library modules log to `catvae.*`; scripts send it to the rule's log file.

A job that trains for hours would otherwise be silent on Snakemake's console, whose only trace of it is the rule's
log file. Training loops therefore mark their per-epoch line as progress (`PROGRESS`); when logging goes to a file,
those lines also reach stderr, which Snakemake shows on its console, prefixed with the log file's path (so
`tail -f` of it shows everything) and thinned to one every `PROGRESS_INTERVAL_S` seconds after the first.
"""

from __future__ import annotations

import logging
import sys
import time

#: Pass as `extra=` to a log call to make it a progress line (shown on the console as well as in the log file).
PROGRESS = {"progress": True}
#: The least time between two progress lines of one job on the console (the log file keeps every line).
PROGRESS_INTERVAL_S = 30.0


class _Throttle(logging.Filter):
    """Let through progress records only: the first, then at most one per `interval` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self.last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "progress", False):
            return False
        now = time.monotonic()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


def setup_logging(log_file: str | None = None, level: int = logging.INFO,
                  progress_interval: float = PROGRESS_INTERVAL_S) -> logging.Logger:
    """Route the `catvae` logger to `log_file` (Snakemake's `log:`) or stderr, with timestamps.

    With a `log_file`, progress lines (logged with `extra=PROGRESS`) also go to stderr, at most one per
    `progress_interval` seconds after the first, each prefixed with the log file's path.
    """
    logger = logging.getLogger("catvae")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler: logging.Handler
    handler = logging.FileHandler(log_file, mode="w") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    if log_file:
        console = logging.StreamHandler(sys.stderr)
        console.addFilter(_Throttle(progress_interval))
        console.setFormatter(logging.Formatter(f"%(asctime)s [{log_file}] %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(console)
    logger.propagate = False
    return logger
