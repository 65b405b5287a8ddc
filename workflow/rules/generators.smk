# Generator stage, per fold and generator replicate: train each generator on the fold's training subjects,
# synthesise to the largest target (and what TSTR needs), and measure each model and class honestly (held-out
# reconstructions, FID/KID, memorisation, cost, train-on-synthetic/test-on-real).


rule train_generator:
    input:
        split=SPLIT,
    output:
        checkpoint=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/{{group}}/checkpoint.pt",
        history=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/{{group}}/history.csv",
        stats=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/{{group}}/train_stats.json",
    log:
        f"{R}/logs/train_generator/fold{{fold}}_{{model}}_rep{{rep}}_{{group}}.log",
    benchmark:
        f"{R}/benchmarks/train_generator/fold{{fold}}_{{model}}_rep{{rep}}_{{group}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda w: 720 if config["generators"][w.model]["epochs"] > 100 else 120,
        gpu=GPU,
    params:
        options=lambda w: training_options(w.model),
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
        manifest=f"{R}/synthetic/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/manifest.csv",
        info=f"{R}/synthetic/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/info.json",
        images=directory(
            f"{R}/synthetic/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/images"
        ),
    log:
        f"{R}/logs/synthesise/fold{{fold}}_{{model}}_rep{{rep}}_{{cls}}.log",
    benchmark:
        f"{R}/benchmarks/synthesise/fold{{fold}}_{{model}}_rep{{rep}}_{{cls}}.tsv"
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
        context=synthesis_option("context", "mean"),
        sampling=synthesis_option("sampling", {}),
        seed=config["synthesis"]["seed"],
        batch_size=config["synthesis"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/synthesise.py"


rule evaluate_generator:
    input:
        unpack(trained_generator),
        split=SPLIT,
        manifest=f"{R}/synthetic/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/manifest.csv",
        info=f"{R}/synthetic/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/info.json",
    output:
        quality=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/{{cls}}/quality.json",
    log:
        f"{R}/logs/evaluate_generator/fold{{fold}}_{{model}}_rep{{rep}}_{{cls}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate_generator/fold{{fold}}_{{model}}_rep{{rep}}_{{cls}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    params:
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
        json=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/tstr.json",
        predictions=f"{R}/generators/fold{{fold}}/{{model}}/rep{{rep}}/tstr_predictions.csv",
    log:
        f"{R}/logs/tstr/fold{{fold}}_{{model}}_rep{{rep}}.log",
    benchmark:
        f"{R}/benchmarks/tstr/fold{{fold}}_{{model}}_rep{{rep}}.tsv"
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
        checkpoint=f"{R}/generators/fold{{fold}}/cvae/rep{{rep}}/all/checkpoint.pt",
        split=SPLIT,
    output:
        f"{R}/generators/fold{{fold}}/cvae/rep{{rep}}/all/latents.npz",
    log:
        f"{R}/logs/export_latents/fold{{fold}}_rep{{rep}}.log",
    benchmark:
        f"{R}/benchmarks/export_latents/fold{{fold}}_rep{{rep}}.tsv"
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
