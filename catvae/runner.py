"""How a Snakemake script (or the CLI) runs one library step: logging to the rule's log, threads, clean errors.

Every `workflow/scripts/*.py` is `run_step(snakemake, lambda: library_call(...))`, so the handling of logs and
bad-input errors lives in one place.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from typing import Any, Callable

from catvae.errors import CatvaeError
from catvae.gpu_slots import pin_job
from catvae.logs import setup_logging


def run_step(snakemake: Any, step: Callable[[], Any], name: str | None = None) -> Any:
    """Run `step` with the rule's log file and thread count; a CatvaeError ends the job with its message.

    A GPU job is first pinned to one of the machine's GPUs (`catvae.gpu_slots`), before anything touches CUDA.
    torch is imported only by steps that use it: a table or figure job does not pay its import.
    """
    log_file = snakemake.log[0] if len(snakemake.log) else None
    logger = setup_logging(log_file)
    rule = name or getattr(snakemake, "rule", "step")
    params = getattr(snakemake, "params", None)
    slot = pin_job(int(getattr(snakemake, "resources", {}).get("gpu", 0) or 0),
                   str(getattr(params, "device", "cpu")))
    if "torch" in sys.modules:  # the step's module imported it: use exactly the rule's threads
        from catvae.device import set_threads

        set_threads(getattr(snakemake, "threads", 1))
    start = time.perf_counter()
    logger.info("rule %s wildcards %s threads %s", rule, dict(snakemake.wildcards.items()), snakemake.threads)
    try:
        result = step()
    except CatvaeError as exc:
        logger.error("%s", exc)
        print(f"catvae: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        logger.error("unexpected failure:\n%s", traceback.format_exc())
        raise
    logger.info("rule %s done in %.1f s", rule, time.perf_counter() - start)
    logging.shutdown()
    if slot is not None:
        slot.release()
    return result
