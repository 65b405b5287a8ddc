# Classifier stage: one CNN per fold, arm and seed, trained on the fold's real training images (+ synthetic or
# augmented extras), its epoch chosen on the fold's real validation split, scored once on the fold's held-out real
# test split.


rule train_classifier:
    input:
        unpack(arm_synthetic),
        split=SPLIT,
    output:
        **L.classifier_files(),
    log:
        L.log("train_classifier/fold{fold}_{arm}_seed{seed}"),
    benchmark:
        L.benchmark("train_classifier/fold{fold}_{arm}_seed{seed}")
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
        config_name=config["config_name"],
        device=config["device"],
        synthetic_classes=lambda w: list(arm_synthetic(w)),
        replicate=arm_replicate,
    script:
        "../scripts/train_classifier.py"
