# Data stage: (phantom cohort) -> 2D slices with manifest -> subject-level split.


rule phantom:
    output:
        directory(f"{R}/phantom"),
    params:
        n_subjects=DATASET["phantom"]["n_subjects"],
        shape=DATASET["phantom"]["shape"],
        seed=DATASET["phantom"]["seed"],
    log:
        f"{R}/logs/phantom.log",
    benchmark:
        f"{R}/benchmarks/phantom.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
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
    params:
        dataset={k: v for k, v in DATASET.items() if k != "split"},
    log:
        f"{R}/logs/extract.log",
    benchmark:
        f"{R}/benchmarks/extract.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        ENV
    script:
        "../scripts/extract.py"


rule split:
    input:
        manifest=f"{R}/data/manifest.csv",
    output:
        split=f"{R}/data/split.csv",
    params:
        fractions={k: DATASET["split"][k] for k in ("train", "val", "test")},
        seed=DATASET["split"]["seed"],
    log:
        f"{R}/logs/split.log",
    benchmark:
        f"{R}/benchmarks/split.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/split.py"
