# Data stage: (phantom cohort) -> 2D slices with manifest -> subject-level split, one file per fold
# (data/fold0/split.csv only, without cross-validation).


rule phantom:
    output:
        directory(L.phantom()),
    log:
        L.log("phantom"),
    benchmark:
        L.benchmark("phantom")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        n_subjects=DATASET["phantom"]["n_subjects"],
        shape=DATASET["phantom"]["shape"],
        seed=DATASET["phantom"]["seed"],
    script:
        "../scripts/phantom.py"


rule extract:
    input:
        unpack(extract_input),
    output:
        manifest=L.data("manifest"),
        discarded=L.data("discarded"),
        skipped=L.data("skipped"),
        slices=directory(L.data("slices")),
    log:
        L.log("extract"),
    benchmark:
        L.benchmark("extract")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        dataset={k: v for k, v in DATASET.items() if k != "split"},
    script:
        "../scripts/extract.py"


rule split:
    input:
        manifest=L.data("manifest"),
    output:
        split=SPLIT,
    log:
        L.log("split/fold{fold}"),
    benchmark:
        L.benchmark("split/fold{fold}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        fractions={k: DATASET["split"][k] for k in ("train", "val", "test")},
        seed=DATASET["split"]["seed"],
        folds=config["evaluation"]["folds"],
    script:
        "../scripts/split.py"
