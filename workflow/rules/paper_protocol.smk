# The reference's protocol end to end (`classifier.paper_protocol: true`), apart from the held-out study: one table
# of every real image (all of them training images), generators trained on every image of the class, per-class
# pools sized to the target with the real images counted, Keras' 80/20 split with a fixed seed, the last epoch
# scored. Its files live under */paper_protocol/ and no held-out job reads them (catvae.classifier.paper_protocol).
# Generator variance is not part of this protocol: one generator per model and group, as the reference trained.


localrules:
    paper_protocol_split,
    paper_protocol_table,
    protocol_inflation,


rule paper_protocol_split:
    input:
        f"{R}/data/fold0/split.csv",
    output:
        PAPER_SPLIT,
    log:
        f"{R}/logs/{PP}/split.log",
    benchmark:
        f"{R}/benchmarks/{PP}/split.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/paper_protocol_split.py"


rule train_paper_generator:
    input:
        split=PAPER_SPLIT,
    output:
        checkpoint=f"{R}/generators/{PP}/{{model}}/{{group}}/checkpoint.pt",
        history=f"{R}/generators/{PP}/{{model}}/{{group}}/history.csv",
        stats=f"{R}/generators/{PP}/{{model}}/{{group}}/train_stats.json",
    log:
        f"{R}/logs/{PP}/train_generator/{{model}}_{{group}}.log",
    benchmark:
        f"{R}/benchmarks/{PP}/train_generator/{{model}}_{{group}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda w: 720 if config["generators"][w.model]["epochs"] > 100 else 120,
        gpu=GPU,
    params:
        options=lambda w: paper_generator_options(w.model),
        image_size=DATASET["image_size"],
        channels=DATASET["channels"],
        classes=CLASSES,
        modalities=MODALITIES,
        seed=config["synthesis"]["seed"],
        device=config["device"],
    script:
        "../scripts/train_generator.py"


rule synthesise_paper:
    input:
        checkpoint=paper_generator_checkpoint,
        split=PAPER_SPLIT,
    output:
        manifest=f"{R}/synthetic/{PP}/{{model}}/{{cls}}/manifest.csv",
        info=f"{R}/synthetic/{PP}/{{model}}/{{cls}}/info.json",
        images=directory(f"{R}/synthetic/{PP}/{{model}}/{{cls}}/images"),
    log:
        f"{R}/logs/{PP}/synthesise/{{model}}_{{cls}}.log",
    benchmark:
        f"{R}/benchmarks/{PP}/synthesise/{{model}}_{{cls}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        targets=config["synthesis"]["targets"],
        tstr_images=None,
        context=synthesis_option("context", "mean"),
        sampling=synthesis_option("sampling", {}),
        seed=config["synthesis"]["seed"],
        batch_size=config["synthesis"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/synthesise.py"


rule paper_protocol_classifier:
    input:
        unpack(paper_arm_synthetic),
        split=PAPER_SPLIT,
    output:
        metrics=f"{R}/classifier/{PP}/{{arm}}/seed{{seed}}/metrics_paper_protocol.json",
        history=f"{R}/classifier/{PP}/{{arm}}/seed{{seed}}/history.csv",
        training_set=f"{R}/classifier/{PP}/{{arm}}/seed{{seed}}/training_set.csv",
    log:
        f"{R}/logs/{PP}/classifier/{{arm}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/{PP}/classifier/{{arm}}_seed{{seed}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    params:
        options=classifier_options(),
        classes=CLASSES,
        paper_seed=config["classifier"]["paper_protocol_seed"],
        config_name=config["config_name"],
        device=config["device"],
        synthetic_classes=lambda w: list(paper_arm_synthetic(w)),
    script:
        "../scripts/paper_protocol_classifier.py"


rule paper_protocol_table:
    input:
        paper_metrics_files(),
    output:
        csv=report(
            f"{R}/tables/classification_paper_protocol.csv",
            caption="../report/paper_protocol.rst",
            category="Tables",
        ),
        md=f"{R}/tables/classification_paper_protocol.md",
        tex=f"{R}/tables/classification_paper_protocol.tex",
    log:
        f"{R}/logs/tables/paper_protocol.log",
    benchmark:
        f"{R}/benchmarks/tables/paper_protocol.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **{**TABLE_PARAMS, "folds": 1, "replicates": 1},
        kind="paper_protocol",
    script:
        "../scripts/tables.py"


rule protocol_inflation:
    input:
        unpack(prediction_inputs),
        paper=paper_metrics_files(),
    output:
        csv=report(
            f"{R}/tables/protocol_inflation.csv",
            caption="../report/protocol_inflation.rst",
            category="Tables",
        ),
        md=f"{R}/tables/protocol_inflation.md",
        tex=f"{R}/tables/protocol_inflation.tex",
        png=report(
            f"{R}/figures/protocol_inflation.png",
            caption="../report/protocol_inflation.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/tables/protocol_inflation.log",
    benchmark:
        f"{R}/benchmarks/tables/protocol_inflation.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config_name=config["config_name"],
        seeds=SEEDS,
        method_order=TABLE_PARAMS["method_order"],
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/protocol_inflation.py"
