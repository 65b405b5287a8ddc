# Classifier stage: one CNN per arm and seed, trained on real (+ synthetic or augmented) training images,
# validated on the real validation split, scored once on the held-out real test split.


rule train_classifier:
    input:
        unpack(arm_synthetic),
        split=f"{R}/data/split.csv",
    output:
        **classifier_outputs(config["classifier"]["paper_protocol"]),
    log:
        f"{R}/logs/train_classifier/{{arm}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_classifier/{{arm}}_seed{{seed}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    params:
        options={
            k: config["classifier"][k]
            for k in ("image_size", "channels", "epochs", "batch_size", "lr", "amp")
        },
        classes=CLASSES,
        paper_protocol=config["classifier"]["paper_protocol"],
        config_name=config["config_name"],
        device=config["device"],
        synthetic_classes=lambda w: list(arm_synthetic(w)),
    script:
        "../scripts/train_classifier.py"
