"""Logging set-up: library modules log to `catvae.*`; scripts send it to the rule's log file."""

from __future__ import annotations

import logging
import sys


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Route the `catvae` logger to `log_file` (Snakemake's `log:`) or stderr, with timestamps."""
    logger = logging.getLogger("catvae")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler: logging.Handler
    handler = logging.FileHandler(log_file, mode="w") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger
