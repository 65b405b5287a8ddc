"""Snakemake adapter: the protocol-inflation table (CSV, Markdown, LaTeX) and figure from the paper-protocol
metrics and the held-out metrics and predictions."""

from pathlib import Path

from catvae.report.captions import PROTOCOL_INFLATION_CAPTION
from catvae.report.protocol_inflation import (
    protocol_inflation_figure,
    protocol_inflation_table,
    rise_note,
    rise_summary,
    table_frame,
)
from catvae.report.statistics import SubjectBootstrap
from catvae.report.tables import load_records, write_table
from catvae.runner import run_step


def build():
    params = snakemake.params
    heldout = load_records(snakemake.input.metrics)
    bootstrap = SubjectBootstrap.from_records(heldout, snakemake.input.predictions, **params.bootstrap)
    frame = protocol_inflation_table(load_records(snakemake.input.paper), bootstrap, heldout,
                                     list(params.method_order))
    rise = rise_note(rise_summary(frame, bootstrap))
    note = f"{rise} Held-out CI: {bootstrap.describe()}."
    write_table(table_frame(frame), Path(snakemake.output.csv).with_suffix(""), caption=PROTOCOL_INFLATION_CAPTION,
                config_name=params.config_name, seeds=list(params.seeds), note=note)
    protocol_inflation_figure(frame, snakemake.output.png, note=rise)


run_step(snakemake, build)
