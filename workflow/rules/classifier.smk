# Classifier stage: one CNN per arm and seed, trained on real (+ synthetic or augmented) training images,
# validated on the real validation split, scored once on the held-out real test split.


def arm_synthetic(wildcards):
    """Synthetic image folders an arm draws from (one per class), or nothing for real-only and baselines."""
    model = arm_generator(wildcards.arm)
    return {cls: f"{R}/synthetic/{model}/{cls}" for cls in CLASSES} if model else {}


def classifier_outputs(paper_protocol):
    folder = f"{R}/classifier/{{arm}}/seed{{seed}}"
    out = {
        "metrics": f"{folder}/metrics.json",
        "history": f"{folder}/history.csv",
        "predictions": f"{folder}/predictions.csv",
        "confusion": f"{folder}/confusion.csv",
        "confusion_png": f"{folder}/confusion.png",
        "checkpoint": f"{folder}/checkpoint.pt",
    }
    if paper_protocol:
        out["paper"] = f"{folder}/metrics_paper_protocol.json"
    return out


rule train_classifier:
    input:
        unpack(arm_synthetic),
        split=f"{R}/data/split.csv",
    output:
        **classifier_outputs(config["classifier"]["paper_protocol"]),
    params:
        options={k: config["classifier"][k] for k in ("image_size", "channels", "epochs", "batch_size", "lr")},
        classes=CLASSES,
        paper_protocol=config["classifier"]["paper_protocol"],
        config_name=config["config_name"],
        device=config["device"],
        synthetic_classes=lambda w: list(arm_synthetic(w)),
    log:
        f"{R}/logs/train_classifier/{{arm}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_classifier/{{arm}}_seed{{seed}}.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/train_classifier.py"
