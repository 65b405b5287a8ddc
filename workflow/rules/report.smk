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
            L.table("generator_quality"),
            caption="../report/generator_quality.rst",
            category="Tables",
        ),
        md=L.table("generator_quality", "md"),
        tex=L.table("generator_quality", "tex"),
    log:
        L.log("tables/generator_quality"),
    benchmark:
        L.benchmark("tables/generator_quality")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **{
            **TABLE_PARAMS,
            "seeds": [
                replicate_seed(config["synthesis"]["seed"], r) for r in REPLICATES
            ],
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
            L.table("classification"),
            caption="../report/classification.rst",
            category="Tables",
        ),
        md=L.table("classification", "md"),
        tex=L.table("classification", "tex"),
    log:
        L.log("tables/classification"),
    benchmark:
        L.benchmark("tables/classification")
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
            L.table("comparisons"),
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        md=L.table("comparisons", "md"),
        tex=L.table("comparisons", "tex"),
    log:
        L.log("tables/comparisons"),
    benchmark:
        L.benchmark("tables/comparisons")
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
            L.figure("confusion_matrices"),
            caption="../report/confusion.rst",
            category="Figures",
        ),
    log:
        L.log("figures/confusion_matrices"),
    benchmark:
        L.benchmark("figures/confusion_matrices")
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
            L.figure("effects"),
            caption="../report/effects.rst",
            category="Figures",
        ),
    log:
        L.log("figures/effects"),
    benchmark:
        L.benchmark("figures/effects")
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
            L.figure("learning_curves"),
            caption="../report/learning_curves.rst",
            category="Figures",
        ),
    log:
        L.log("figures/learning_curves"),
    benchmark:
        L.benchmark("figures/learning_curves")
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
        split=L.split(0),
        synthetic=[
            L.synthetic_files(0, m, 0, c)["manifest"] for m in MODELS for c in CLASSES
        ],
    output:
        report(
            L.figure("samples"),
            caption="../report/samples.rst",
            category="Figures",
        ),
    log:
        L.log("figures/samples"),
    benchmark:
        L.benchmark("figures/samples")
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
        L.latents(0, 0),
    output:
        report(
            L.figure(f"{LATENT_MODEL}_latent_space"),
            caption="../report/latent.rst",
            category="Figures",
        ),
    log:
        L.log("figures/cvae_latent_space"),
    benchmark:
        L.benchmark("figures/cvae_latent_space")
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
        [t for t in study_targets() if t != L.provenance()],
    output:
        report(
            L.provenance(),
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        L.log("provenance"),
    benchmark:
        L.benchmark("provenance")
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
        L.resolved_config(),
    log:
        L.log("resolved_config"),
    benchmark:
        L.benchmark("resolved_config")
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
