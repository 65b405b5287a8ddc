"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON / CSV files."""

from pathlib import Path

from catvae.report.statistics import SubjectBootstrap, compare_arms, comparison_note, interval_note, tstr_note
from catvae.report.tables import (
    classification_table,
    comparisons_table,
    generator_quality_table,
    load_records,
    spread_note,
    write_table,
)
from catvae.runner import run_step

CAPTIONS = {
    "generator_quality": (
        "Generator quality per model and class on held-out real images: SSIM/PSNR/MSE reconstruct through the latent"
        " code (see 'Reconstructed from'); the CAT-VAE's own-feature reconstructions bypass it and compare with no"
        " other model; the diffusion model (ours) has no encoder, so held-out reconstruction is undefined for it"
        " (n/a); MS-SSIM synthetic / real pairs: weight-free diversity, the mean MS-SSIM of random pairs of the"
        " class's synthetic images and of its real training images (lower = more diverse; synthetic above real"
        " = less varied than the data); training time, sampling ms/image and peak memory are the cost; TSTR: balanced accuracy and AUROC of the CNN trained on the generator's synthetic images"
        " only, on the real test images, each with its confidence interval for test-subject sampling (cluster"
        " bootstrap over test subjects, predictions pooled over folds and generator replicates); chance level:"
        " balanced accuracy 1/(number of classes), 0.5 with two, and AUROC 0.5"
    ),
    "classification": "Classification on the held-out real test set (protocol: held-out subjects)",
    "paper_protocol": "Classification under the reference's protocol (random 80/20 split of the mixed real + synthetic pool)",
    "comparisons": "Paired differences against real only and against random oversampling at the same target (held-out test subjects)",
}


def build():
    kind, params = snakemake.params.kind, snakemake.params
    caption, note = CAPTIONS[kind], None
    if kind == "generator_quality":
        tstr = load_records(snakemake.input.tstr)
        bootstrap = SubjectBootstrap.from_records(tstr, snakemake.input.tstr_predictions, arm_key="model",
                                                  seed_key="replicate", **params.bootstrap)
        frame = generator_quality_table(load_records(snakemake.input.quality), tstr=tstr,
                                        tstr_intervals=bootstrap.intervals())
        note = tstr_note(bootstrap)
        if params.folds * len(params.seeds) > 1:
            caption += f"; other numbers: mean ± std over {params.folds} fold(s) x {len(params.seeds)} replicate(s)"
    elif kind == "paper_protocol":
        frame = classification_table(load_records(snakemake.input), method_order=list(params.method_order))
        caption += "; " + spread_note(len(params.seeds), params.folds, params.replicates)
    else:
        records = load_records(snakemake.input.metrics)
        bootstrap = SubjectBootstrap.from_records(records, snakemake.input.predictions, **params.bootstrap)
        if kind == "classification":
            frame = classification_table(records, list(params.method_order), bootstrap.intervals())
            caption += "; " + spread_note(len(params.seeds), params.folds, params.replicates)
            note = interval_note(bootstrap)
        else:
            alpha = 1 - bootstrap.ci
            frame = comparisons_table(compare_arms(bootstrap), list(params.method_order), alpha=alpha)
            note = comparison_note(bootstrap, params.config_name, alpha)
    return write_table(
        frame,
        Path(snakemake.output.csv).with_suffix(""),
        caption=caption,
        config_name=params.config_name,
        seeds=list(params.seeds),
        note=note,
    )


run_step(snakemake, build)
