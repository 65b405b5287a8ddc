"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON / CSV files."""

from pathlib import Path

from catvae.report.statistics import (
    INTERVALS,
    SubjectBootstrap,
    compare_arms,
    comparison_note,
    holm_families,
    interval_note,
    tstr_note,
)
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
        " only, on the real test images,"
        " each with its confidence interval (the note under the table says which"
        " sources of variance it holds and how many generator replicates each model had); chance level:"
        " balanced accuracy 1/(number of classes), 0.5 with two, and AUROC 0.5"
    ),
    "classification": "Classification on the held-out real test set (protocol: held-out subjects)",
    "paper_protocol": "Classification under the reference's protocol (random 80/20 split of the mixed real + synthetic pool)",
    "comparisons": (
        "Paired differences against each reference of evaluation.compare (real only; random oversampling and the"
        " VAE at the same target), held-out test subjects; the note says which sources of variance the intervals"
        " hold, the run counts, the primary metric and the Holm families"
    ),
}


def build():
    kind, params = snakemake.params.kind, snakemake.params
    caption, note, bootstrap = CAPTIONS[kind], None, None
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
            alpha, primary = 1 - bootstrap.ci, params.compare["primary"]
            comparisons = compare_arms(bootstrap, references=params.compare["references"], primary=primary)
            frame = comparisons_table(comparisons, list(params.method_order), alpha=alpha,
                                      resamples=bootstrap.resamples)
            note = comparison_note(bootstrap, params.config_name, alpha, primary, holm_families(comparisons))
    if bootstrap is not None:
        runs = "generator replicates" if kind == "generator_quality" else "seeds"
        caption += f"; CIs hold {INTERVALS[bootstrap.interval_kind]}: {bootstrap.run_counts(runs)}"
    return write_table(
        frame,
        Path(snakemake.output.csv).with_suffix(""),
        caption=caption,
        config_name=params.config_name,
        seeds=list(params.seeds),
        note=note,
    )


run_step(snakemake, build)
