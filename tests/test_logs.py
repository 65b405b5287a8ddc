"""Progress on the console: a long job's per-epoch line reaches stderr (Snakemake's console), thinned; the rule's
log file keeps every line."""

from __future__ import annotations

import logging

from catvae.logs import PROGRESS, setup_logging
from generators.test_train import make_split, train


def _console(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_progress_lines_reach_the_console_thinned_and_the_file_keeps_all(tmp_path, capsys):
    log_file = tmp_path / "job.log"
    log = setup_logging(str(log_file), progress_interval=3600)
    logging.getLogger("catvae.test").info("set-up detail")
    for epoch in (1, 2, 3):
        logging.getLogger("catvae.test").info("epoch %d/3", epoch, extra=PROGRESS)
    for handler in log.handlers:
        handler.flush()
    console = _console(capsys)
    assert len(console) == 1 and console[0].endswith(f"[{log_file}] epoch 1/3")  # first, then one per hour
    text = log_file.read_text()
    assert "set-up detail" in text and all(f"epoch {e}/3" in text for e in (1, 2, 3))


def test_generator_training_prints_its_epochs_on_the_console(tmp_path, capsys):
    split_csv = make_split(tmp_path / "data")
    setup_logging(str(tmp_path / "train.log"), progress_interval=0)
    train("vae", split_csv, tmp_path / "out", epochs=2)
    console = _console(capsys)
    assert [line.split("] ", 1)[1].split(":")[0] for line in console] == ["vae/Tumor epoch 1/2", "vae/Tumor epoch 2/2"]
    setup_logging()  # leave the catvae logger as other tests expect it
