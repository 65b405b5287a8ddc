"""Caption text of the study's tables: what each table shows, written once in the library.

`TABLE_CAPTIONS` opens the caption of each kind of `catvae.report.study_tables.build_table` (which appends what a
run adds: the spread over folds and seeds, the interval's sources of variance and run counts);
`PROTOCOL_INFLATION_CAPTION` is the protocol-inflation table's (`catvae.report.protocol_inflation`).
"""

from __future__ import annotations

#: The opening caption of each table kind, by kind (`study_tables.TABLE_KINDS`).
TABLE_CAPTIONS: dict[str, str] = {
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

PROTOCOL_INFLATION_CAPTION = (
    "Protocol inflation: per arm, accuracy under the reference's protocol (random 80/20 split of every real"
    " image plus the arm's extras, generators trained on every image of the class) beside the held-out"
    " balanced accuracy on unseen test subjects, the share of synthetic images in the paper protocol's scored"
    " 20%, and the paper's Table 7 value at the same target rank"
)
