"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON files."""

from pathlib import Path

from catvae.io import read_json
from catvae.report.tables import classification_table, generator_quality_table, write_table
from catvae.runner import run_step

CAPTIONS = {
    "generator_quality": (
        "Generator quality per model and class on held-out real images: SSIM/PSNR/MSE reconstruct through the latent"
        " code (see 'Reconstructed from'); the CAT-VAE's own-feature reconstructions bypass it and compare with no"
        " other model"
    ),
    "classification": "Classification on the held-out real test set (protocol: held-out subjects)",
    "paper_protocol": "Classification under the reference's protocol (random 80/20 split of the mixed real + synthetic pool)",
}


def build():
    rows = [read_json(p) for p in snakemake.input]
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
