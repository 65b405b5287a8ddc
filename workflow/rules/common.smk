# Shared by every stage: the validated config, the results layout, and the lists that span the DAG
# (classes, generators, targets, classifier arms). All paths are under results/<dataset.name>/.

import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from catvae.config import validate_config
from catvae.data.classes import dataset_classes, dataset_modalities

# Validate once at start-up, fill every default, and stop with a message that names the bad key.
_validated = validate_config(config)
config.clear()
config.update(_validated)

DATASET = config["dataset"]
R = f"{config['results']}/{DATASET['name']}"
ENV = "../../environment.yml"
CLASSES = dataset_classes(DATASET)
MODALITIES = dataset_modalities(DATASET)
MODELS = list(config["generators"]["models"])
TARGETS = [str(t) for t in config["synthesis"]["targets"]]
SEEDS = list(config["seeds"])
GPU = 0 if config["device"] == "cpu" else 1


wildcard_constraints:
    model="|".join(MODELS) or "none",
    cls="|".join(map(re.escape, CLASSES)),
    group="|".join(map(re.escape, CLASSES + ["all"])),
    seed=r"\d+",
    arm=r"[A-Za-z]+(@[A-Za-z0-9]+)?",


def generator_group(model, cls):
    """The conditional VAE is one model over all classes; the others are one model per class."""
    return "all" if model == "cvae" else cls


# Generator keys read only at synthesis: changing them must not re-train (params trigger) or block a resume.
SYNTHESIS_ONLY_KEYS = ("context", "sampling")


def training_options(model):
    """The `generators.<model>` block without the keys only synthesis reads."""
    return {
        k: v
        for k, v in config["generators"][model].items()
        if k not in SYNTHESIS_ONLY_KEYS
    }


def generator_jobs():
    """(model, group) pairs that get a training job."""
    jobs = []
    for model in MODELS:
        groups = ["all"] if model == "cvae" else CLASSES
        jobs.extend((model, group) for group in groups)
    return jobs


def arms():
    """Classifier arms: real only, every generator x target, and the reviewer's baselines x target."""
    out = ["none"]
    out += [f"{m}@{t}" for m in MODELS for t in TARGETS]
    out += [f"{b}@{t}" for b in config["classifier"]["baselines"] for t in TARGETS]
    return out


def arm_generator(arm):
    """The generator an arm draws synthetic images from, or None."""
    method = arm.split("@")[0]
    return method if method in MODELS else None


def study_targets():
    """Everything `snakemake` builds by default: tables, figures, provenance."""
    targets = [
        f"{R}/tables/classification.csv",
        f"{R}/figures/confusion_matrices.png",
        f"{R}/figures/learning_curves.png",
        f"{R}/provenance.json",
    ]
    if MODELS:
        targets += [f"{R}/tables/generator_quality.csv", f"{R}/figures/samples.png"]
    if "cvae" in MODELS:
        targets.append(f"{R}/figures/cvae_latent_space.png")
    if config["classifier"]["paper_protocol"]:
        targets.append(f"{R}/tables/classification_paper_protocol.csv")
    return targets


def extract_input(wildcards):
    """The phantom cohort is a rule output; real datasets are read in place from dataset.root."""
    return {"cohort": f"{R}/phantom"} if DATASET["kind"] == "phantom" else {}


def generator_checkpoint(wildcards):
    return f"{R}/generators/{wildcards.model}/{generator_group(wildcards.model, wildcards.cls)}/checkpoint.pt"


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
        "training_set": f"{folder}/training_set.csv",
    }
    if paper_protocol:
        out["paper"] = f"{folder}/metrics_paper_protocol.json"
    return out


def quality_files(wildcards=None):
    return [f"{R}/generators/{m}/{c}/quality.json" for m in MODELS for c in CLASSES]


def metrics_files(name):
    return [f"{R}/classifier/{a}/seed{s}/{name}" for a in arms() for s in SEEDS]


TABLE_PARAMS = dict(
    config_name=config["config_name"],
    seeds=SEEDS,
    method_order=MODELS + list(config["classifier"]["baselines"]),
)
