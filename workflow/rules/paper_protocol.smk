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
        L.split(0),
    output:
        PAPER_SPLIT,
    log:
        L.log(f"{PP}/split"),
    benchmark:
        L.benchmark(f"{PP}/split")
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
        **L.paper_generator_files(),
    log:
        L.log(f"{PP}/train_generator/{{model}}_{{group}}"),
    benchmark:
        L.benchmark(f"{PP}/train_generator/{{model}}_{{group}}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda w: 720 if config["generators"][w.model]["epochs"] > 100 else 120,
        gpu=GPU,
    params:
        options=lambda w: steps.paper_training_options(config, w.model),
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
        manifest=L.paper_synthetic_files()["manifest"],
        info=L.paper_synthetic_files()["info"],
        images=directory(L.paper_synthetic_files()["images"]),
    log:
        L.log(f"{PP}/synthesise/{{model}}_{{cls}}"),
    benchmark:
        L.benchmark(f"{PP}/synthesise/{{model}}_{{cls}}")
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
        context=synthesis_option("context"),
        sampling=synthesis_option("sampling"),
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
        **L.paper_classifier_files(),
    log:
        L.log(f"{PP}/classifier/{{arm}}_seed{{seed}}"),
    benchmark:
        L.benchmark(f"{PP}/classifier/{{arm}}_seed{{seed}}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    params:
        options=steps.classifier_options(config),
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
            L.table("classification_paper_protocol"),
            caption="../report/paper_protocol.rst",
            category="Tables",
        ),
        md=L.table("classification_paper_protocol", "md"),
        tex=L.table("classification_paper_protocol", "tex"),
    log:
        L.log("tables/paper_protocol"),
    benchmark:
        L.benchmark("tables/paper_protocol")
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
            L.table("protocol_inflation"),
            caption="../report/protocol_inflation.rst",
            category="Tables",
        ),
        md=L.table("protocol_inflation", "md"),
        tex=L.table("protocol_inflation", "tex"),
        png=report(
            L.figure("protocol_inflation"),
            caption="../report/protocol_inflation.rst",
            category="Figures",
        ),
    log:
        L.log("tables/protocol_inflation"),
    benchmark:
        L.benchmark("tables/protocol_inflation")
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
