"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON files."""

from pathlib import Path

from catvae.report.tables import classification_table, generator_quality_table, load_records, write_table
from catvae.runner import run_step

CAPTIONS = {
    "generator_quality": "Generator quality per model and class (reconstructions and FID/KID on held-out real images)",
    "classification": "Classification on the held-out real test set (protocol: held-out subjects)",
    "paper_protocol": "Classification under the reference's protocol (random 80/20 split of the mixed real + synthetic pool)",
}


def build():
    rows = load_records(snakemake.input)
    kind = snakemake.params.kind
    if kind == "generator_quality":
        frame = generator_quality_table(rows)
    else:
        frame = classification_table(rows, method_order=list(snakemake.params.method_order))
    return write_table(
        frame,
        Path(snakemake.output.csv).with_suffix(""),
        caption=CAPTIONS[kind],
        config_name=snakemake.params.config_name,
        seeds=list(snakemake.params.seeds),
    )


run_step(snakemake, build)
