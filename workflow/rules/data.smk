# Data stage: (phantom cohort) -> 2D slices with manifest -> subject-level split, one file per fold
# (data/fold0/split.csv only, without cross-validation).


rule phantom:
    output:
        directory(f"{R}/phantom"),
    log:
        f"{R}/logs/phantom.log",
    benchmark:
        f"{R}/benchmarks/phantom.tsv"
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
        manifest=f"{R}/data/manifest.csv",
        discarded=f"{R}/data/discarded.csv",
        skipped=f"{R}/data/skipped_subjects.csv",
        slices=directory(f"{R}/data/slices"),
    log:
        f"{R}/logs/extract.log",
    benchmark:
        f"{R}/benchmarks/extract.tsv"
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
        manifest=f"{R}/data/manifest.csv",
    output:
        split=SPLIT,
    log:
        f"{R}/logs/split/fold{{fold}}.log",
    benchmark:
        f"{R}/benchmarks/split/fold{{fold}}.tsv"
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
