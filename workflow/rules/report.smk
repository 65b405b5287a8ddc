# Report stage: paper-shaped tables, figures, provenance; `snakemake --report` collects them into one HTML page.


# Each takes seconds: on a cluster they run in the submitting Snakemake process, not as jobs of their own.
localrules:
    generator_quality_table,
    classification_table,
    comparisons_table,
    confusion_figure,
    effects_figure,
    learning_curves_figure,
    samples_figure,
    latent_figure,
    provenance,
    resolved_config,


rule generator_quality_table:
    input:
        unpack(tstr_inputs),
        quality=quality_files(),
    output:
        csv=report(
            f"{R}/tables/generator_quality.csv",
            caption="../report/generator_quality.rst",
            category="Tables",
        ),
        md=f"{R}/tables/generator_quality.md",
        tex=f"{R}/tables/generator_quality.tex",
    log:
        f"{R}/logs/tables/generator_quality.log",
    benchmark:
        f"{R}/benchmarks/tables/generator_quality.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **{
            **TABLE_PARAMS,
            "seeds": [config["synthesis"]["seed"] + r for r in REPLICATES],
        },
        kind="generator_quality",
        # Generator replicate r is trained with seed synthesis.seed + r; the classifier seeds do not apply here.
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tables.py"


rule classification_table:
    input:
        unpack(prediction_inputs),
    output:
        csv=report(
            f"{R}/tables/classification.csv",
            caption="../report/classification.rst",
            category="Tables",
        ),
        md=f"{R}/tables/classification.md",
        tex=f"{R}/tables/classification.tex",
    log:
        f"{R}/logs/tables/classification.log",
    benchmark:
        f"{R}/benchmarks/tables/classification.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **TABLE_PARAMS,
        kind="classification",
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tables.py"


rule comparisons_table:
    input:
        unpack(prediction_inputs),
    output:
        csv=report(
            f"{R}/tables/comparisons.csv",
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        md=f"{R}/tables/comparisons.md",
        tex=f"{R}/tables/comparisons.tex",
    log:
        f"{R}/logs/tables/comparisons.log",
    benchmark:
        f"{R}/benchmarks/tables/comparisons.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **TABLE_PARAMS,
        kind="comparisons",
        bootstrap=BOOTSTRAP,
        compare=COMPARE,
    script:
        "../scripts/tables.py"


rule confusion_figure:
    input:
        metrics_files("metrics.json"),
    output:
        report(
            f"{R}/figures/confusion_matrices.png",
            caption="../report/confusion.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figures/confusion_matrices.log",
    benchmark:
        f"{R}/benchmarks/figures/confusion_matrices.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figure_confusion.py"


rule effects_figure:
    input:
        unpack(prediction_inputs),
    output:
        report(
            f"{R}/figures/effects.png",
            caption="../report/effects.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figures/effects.log",
    benchmark:
        f"{R}/benchmarks/figures/effects.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method_order=TABLE_PARAMS["method_order"],
        bootstrap=BOOTSTRAP,
        compare=COMPARE,
    script:
        "../scripts/figure_effects.py"


rule learning_curves_figure:
    input:
        metrics_files("history.csv"),
    output:
        report(
            f"{R}/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figures/learning_curves.log",
    benchmark:
        f"{R}/benchmarks/figures/learning_curves.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        arms=arms(),
        seeds=SEEDS,
        method_order=TABLE_PARAMS["method_order"],
    script:
        "../scripts/figure_learning_curves.py"


rule samples_figure:
    input:
        split=SPLIT.format(fold=0),
        synthetic=[
            f"{synthetic_dir(0, m, 0, c)}/manifest.csv"
            for m in MODELS
            for c in CLASSES
        ],
    output:
        report(
            f"{R}/figures/samples.png",
            caption="../report/samples.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figures/samples.log",
    benchmark:
        f"{R}/benchmarks/figures/samples.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        pairs=[(m, c) for m in MODELS for c in CLASSES],
        classes=CLASSES,
        image_size=DATASET["image_size"],
        per_row=6,
        seed=config["synthesis"]["seed"],
    script:
        "../scripts/figure_samples.py"


rule latent_figure:
    input:
        f"{R}/generators/fold0/cvae/rep0/all/latents.npz",
    output:
        report(
            f"{R}/figures/cvae_latent_space.png",
            caption="../report/latent.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figures/cvae_latent_space.log",
    benchmark:
        f"{R}/benchmarks/figures/cvae_latent_space.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figure_latent.py"


rule provenance:
    input:
        [t for t in study_targets() if not t.endswith("provenance.json")],
    output:
        report(
            f"{R}/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        f"{R}/logs/provenance.log",
    benchmark:
        f"{R}/benchmarks/provenance.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=config,
        seeds=SEEDS,
        config_files=[str(f) for f in workflow.configfiles],
    script:
        "../scripts/provenance.py"


# On demand, not part of the study: `snakemake --configfile F results/<name>/config.resolved.yaml` writes the
# settings a run of F uses, in the format of `catvae validate-config --config F --show`.
rule resolved_config:
    output:
        f"{R}/config.resolved.yaml",
    log:
        f"{R}/logs/resolved_config.log",
    benchmark:
        f"{R}/benchmarks/resolved_config.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=config,
        config_files=[str(f) for f in workflow.configfiles],
    script:
        "../scripts/resolved_config.py"
