"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON files."""

from pathlib import Path

from catvae.report.tables import (
    classification_table,
    generator_quality_table,
    load_records,
    spread_note,
    write_table,
)
from catvae.runner import run_step

CAPTIONS = {
    "generator_quality": "Generator quality per model and class (reconstructions and FID/KID on held-out real images; "
    "TSTR: balanced accuracy of the CNN trained on the generator's synthetic images only, on the real test images)",
    "classification": "Classification on the held-out real test set (protocol: held-out subjects)",
    "paper_protocol": "Classification under the reference's protocol (random 80/20 split of the mixed real + synthetic pool)",
}


def build():
    kind = snakemake.params.kind
    caption = CAPTIONS[kind]
    if kind == "generator_quality":
        frame = generator_quality_table(load_records(snakemake.input.quality), tstr=load_records(snakemake.input.tstr))
        if snakemake.params.folds * len(snakemake.params.seeds) > 1:
            caption += f"; mean ± std over {snakemake.params.folds} fold(s) x {len(snakemake.params.seeds)} replicate(s)"
    else:
        frame = classification_table(load_records(snakemake.input), method_order=list(snakemake.params.method_order))
        caption += "; " + spread_note(len(snakemake.params.seeds), snakemake.params.folds, snakemake.params.replicates)
    return write_table(
        frame,
        Path(snakemake.output.csv).with_suffix(""),
        caption=caption,
        config_name=snakemake.params.config_name,
        seeds=list(snakemake.params.seeds),
    )


run_step(snakemake, build)
