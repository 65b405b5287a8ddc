# Generator stage: train each generator on the training split, synthesise to the largest target,
# and measure each model and class honestly (held-out reconstructions, FID/KID, memorisation, cost).


rule train_generator:
    input:
        split=f"{R}/data/split.csv",
    output:
        checkpoint=f"{R}/generators/{{model}}/{{group}}/checkpoint.pt",
        history=f"{R}/generators/{{model}}/{{group}}/history.csv",
        stats=f"{R}/generators/{{model}}/{{group}}/train_stats.json",
    log:
        f"{R}/logs/train_generator/{{model}}_{{group}}.log",
    benchmark:
        f"{R}/benchmarks/train_generator/{{model}}_{{group}}.tsv"
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
        split=f"{R}/data/split.csv",
    output:
        directory(f"{R}/synthetic/{{model}}/{{cls}}"),
    log:
        f"{R}/logs/synthesise/{{model}}_{{cls}}.log",
    benchmark:
        f"{R}/benchmarks/synthesise/{{model}}_{{cls}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    params:
        targets=config["synthesis"]["targets"],
        context=lambda w: config["generators"][w.model].get("context", "mean"),
        sampling=lambda w: config["generators"][w.model]["sampling"],
        seed=config["synthesis"]["seed"],
        batch_size=config["synthesis"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/synthesise.py"


rule evaluate_generator:
    input:
        checkpoint=generator_checkpoint,
        split=f"{R}/data/split.csv",
        synthetic=f"{R}/synthetic/{{model}}/{{cls}}",
    output:
        quality=f"{R}/generators/{{model}}/{{cls}}/quality.json",
    log:
        f"{R}/logs/evaluate_generator/{{model}}_{{cls}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate_generator/{{model}}_{{cls}}.tsv"
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
        seed=config["synthesis"]["seed"],
        config_name=config["config_name"],
        device=config["device"],
    script:
        "../scripts/evaluate_generator.py"


rule export_latents:
    input:
        checkpoint=f"{R}/generators/cvae/all/checkpoint.pt",
        split=f"{R}/data/split.csv",
    output:
        f"{R}/generators/cvae/all/latents.npz",
    log:
        f"{R}/logs/export_latents.log",
    benchmark:
        f"{R}/benchmarks/export_latents.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        device=config["device"],
    script:
        "../scripts/export_latents.py"
