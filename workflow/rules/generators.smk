# Generator stage, per fold and generator replicate: train each generator on the fold's training subjects,
# synthesise to the largest target (and what TSTR needs), and measure each model and class honestly (held-out
# reconstructions, FID/KID, memorisation, cost, train-on-synthetic/test-on-real).


rule train_generator:
    input:
        split=SPLIT,
    output:
        **L.generator_files(),
    log:
        L.log("train_generator/fold{fold}_{model}_rep{rep}_{group}"),
    benchmark:
        L.benchmark("train_generator/fold{fold}_{model}_rep{rep}_{group}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda w: 720 if config["generators"][w.model]["epochs"] > 100 else 120,
        gpu=GPU,
    params:
        options=lambda w: steps.training_options(config, w.model),
        image_size=DATASET["image_size"],
        channels=DATASET["channels"],
        classes=CLASSES,
        modalities=MODALITIES,
        seed=config["synthesis"]["seed"],
        device=config["device"],
    script:
        "../scripts/train_generator.py"


rule synthesise:
    input:
        checkpoint=generator_checkpoint,
        split=SPLIT,
    output:
        manifest=L.synthetic_files()["manifest"],
        info=L.synthetic_files()["info"],
        images=directory(L.synthetic_files()["images"]),
    log:
        L.log("synthesise/fold{fold}_{model}_rep{rep}_{cls}"),
    benchmark:
        L.benchmark("synthesise/fold{fold}_{model}_rep{rep}_{cls}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        targets=config["synthesis"]["targets"],
        tstr_images=TSTR_IMAGES,
        context=synthesis_option("context"),
        sampling=synthesis_option("sampling"),
        seed=config["synthesis"]["seed"],
        batch_size=config["synthesis"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/synthesise.py"


rule evaluate_generator:
    input:
        unpack(trained_generator),
        unpack(inception_input),
        split=SPLIT,
        manifest=L.synthetic_files()["manifest"],
        info=L.synthetic_files()["info"],
    output:
        quality=L.quality(),
    log:
        L.log("evaluate_generator/fold{fold}_{model}_rep{rep}_{cls}"),
    benchmark:
        L.benchmark("evaluate_generator/fold{fold}_{model}_rep{rep}_{cls}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    params:
        # the weights are read from the input; the param names a configured path with no file (FID/KID n/a)
        inception_weights=config["quality"]["inception_weights"],
        max_fid_images=config["quality"]["max_fid_images"],
        near_copy_ssim=config["quality"]["near_copy_ssim"],
        diversity_pairs=config["quality"]["diversity_pairs"],
        timing_images=config["quality"]["timing_images"],
        seed=config["synthesis"]["seed"],
        config_name=config["config_name"],
        device=config["device"],
    script:
        "../scripts/evaluate_generator.py"


rule tstr:
    input:
        unpack(generator_manifests),
        split=SPLIT,
    output:
        **L.tstr_files(),
    log:
        L.log("tstr/fold{fold}_{model}_rep{rep}"),
    benchmark:
        L.benchmark("tstr/fold{fold}_{model}_rep{rep}")
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
        tstr_images=TSTR_IMAGES,
        select=config["quality"]["tstr_select"],
        targets=config["synthesis"]["targets"],
        seed=config["synthesis"]["seed"],
        config_name=config["config_name"],
        device=config["device"],
    script:
        "../scripts/tstr.py"


rule export_latents:
    input:
        checkpoint=L.generator_files(model=LATENT_MODEL, group=ALL_CLASSES)[
            "checkpoint"
        ],
        split=SPLIT,
    output:
        L.latents(),
    log:
        L.log("export_latents/fold{fold}_rep{rep}"),
    benchmark:
        L.benchmark("export_latents/fold{fold}_rep{rep}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPU,
    params:
        device=config["device"],
    script:
        "../scripts/export_latents.py"
