# Shared by every stage: the validated config, the results layout, and the lists that span the DAG
# (folds, classes, generators and their replicates, targets, classifier arms). All paths are under
# results/<dataset.name>/; every per-fold file has fold<f> in its path, so folds are independent jobs.

import os
import re
import sys
from pathlib import Path

# Parse-time imports and every job's script import catvae from this checkout, whatever environment runs the job
# (the project's .venv, an installed copy, or a per-rule conda environment built with --use-conda).
sys.path.insert(0, workflow.basedir)
# (Setting it, not requiring it: no `envvars:` assertion applies.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
    )
)

from catvae.config import check_config_files, check_dataset_root, validate_config
from catvae.data.kinds import dataset_classes, dataset_kind, dataset_modalities
from catvae.preflight import check_outputs_fit, check_study
from catvae.registry import ALL_CLASSES, generator
from catvae.vocabulary.arms import ARM_WILDCARD, study_arms
from catvae.vocabulary.arms import arm_generator as _arm_generator
from catvae.vocabulary.layout import LATENT_MODEL, PAPER_PROTOCOL, Layout
from catvae.vocabulary.layout import arm_replicate as _arm_replicate
from catvae.vocabulary.layout import classifier_runs, generator_runs, replicate_seed
from catvae.vocabulary import steps

# Validate once at start-up, fill every default, and stop with a message that names the bad key. `--config` values
# are passed apart because Snakemake hands their nested scalars over as strings; the schema says what they are.
check_config_files(workflow.configfiles)
_validated = validate_config(config, command_line=workflow.config_settings.config)
config.clear()
config.update(_validated)

DATASET = config["dataset"]
# Every result path comes from the layout (catvae/vocabulary/layout.py), under results/<dataset.name>/.
L = Layout.of(config)
ENV = "../../environment.yml"
check_dataset_root(DATASET)
CLASSES = dataset_classes(DATASET)
# Before any job, in the main process only (a cluster job re-reads the workflow while outputs fill the disk): refuse
# more folds than subjects or outputs beyond the free disk, and say once what the study will cost.
if workflow.is_main_process:
    print(check_study(config, CLASSES).summary(), file=sys.stderr)
MODALITIES = dataset_modalities(DATASET)


# When a run starts (never in a dry run), before its first job: the disk check again with the generator and
# classifier checkpoints counted; sizing the models imports torch (seconds), too slow for every `snakemake -n`.
onstart:
    check_outputs_fit(config, CLASSES, MODALITIES)


MODELS = list(config["generators"]["models"])
TARGETS = [str(t) for t in config["synthesis"]["targets"]]
SEEDS = list(config["seeds"])
FOLDS = list(range(config["evaluation"]["folds"]))
REPLICATES = list(range(config["generators"]["replicates"]))
# One GPU for every rule that runs a torch model on config `device` (train_generator, synthesise,
# evaluate_generator, export_latents, train_classifier, tstr), none when `device` is cpu; every other rule needs CPUs
# only. On a cluster executor that is a GPU of the job's own; on one machine a slot of the `gpu` pool
# (`--resources gpu=P`, profiles/gpunode): the job pins itself to one visible GPU (catvae/gpu_slots.py), at most
# P / (number of GPUs) jobs on each. The profiles add no GPU requests of their own (tests/workflow/test_workflow.py checks the
# plan rule by rule).
GPU = 0 if config["device"] == "cpu" else 1
SPLIT = L.split()
# Synthetic images per class the train-on-synthetic/test-on-real score uses ("largest" = the largest target).
TSTR_IMAGES = steps.tstr_images(config)


wildcard_constraints:
    model="|".join(MODELS) or "none",
    cls="|".join(map(re.escape, CLASSES)),
    group="|".join(map(re.escape, CLASSES + [ALL_CLASSES])),
    seed=r"\d+",
    fold=r"\d+",
    rep=r"\d+",
    arm=ARM_WILDCARD,


def generator_group(model, cls):
    """A conditional generator is one model over all classes (group `all`); the others are one model per class."""
    return generator(model).group_of(cls)


def synthesis_option(key):
    """A params function: the synthesis-only `key` of the wildcard generator's block (catvae.vocabulary.steps), one
    rule for the held-out and the paper-protocol synthesis."""
    return lambda w: steps.synthesis_option(config, w.model, key)


def arms():
    """Classifier arms: real only (plus the class-weighted loss), every generator x target, and the reviewer's
    resampling baselines x target."""
    return study_arms(MODELS, TARGETS, config["classifier"]["baselines"])


def arm_generator(arm):
    """The generator an arm draws synthetic images from, or None."""
    return _arm_generator(arm, MODELS)


def arm_replicate(wildcards):
    """The generator replicate a generator arm draws from: classifier seed k uses replicate k mod replicates."""
    if arm_generator(wildcards.arm) is None:
        return None
    return _arm_replicate(wildcards.seed, len(REPLICATES))


def study_targets():
    """Everything `snakemake` builds by default: tables, figures, provenance."""
    targets = [
        L.table("classification"),
        L.table("comparisons"),
        L.figure("effects"),
        L.figure("confusion_matrices"),
        L.figure("learning_curves"),
        L.provenance(),
    ]
    if MODELS:
        targets += [L.table("generator_quality"), L.figure("samples")]
    if LATENT_MODEL in MODELS:
        targets.append(L.figure(f"{LATENT_MODEL}_latent_space"))
    if config["classifier"]["paper_protocol"]:
        targets += [
            L.table("classification_paper_protocol"),
            L.table("protocol_inflation"),
            L.figure("protocol_inflation"),
        ]
    return targets


def extract_input(wildcards):
    """What extract reads (catvae.data.kinds): the phantom cohort (a rule output), dataset.root, or MedMNIST files."""
    return dataset_kind(DATASET).inputs(DATASET, L.phantom())


def inception_input(wildcards):
    """The InceptionV3 weights FID/KID read, where quality.inception_weights names a file. A path with no file is not
    an input: the job then records FID/KID as n/a with the path it did not find (the param), as a missing file never
    stopped a study."""
    weights = config["quality"]["inception_weights"]
    return {"inception_weights": weights} if weights and Path(weights).is_file() else {}


def trained_generator(wildcards):
    """The checkpoint and training statistics of the generator that makes class `cls` in this fold and replicate."""
    group = generator_group(wildcards.model, wildcards.cls)
    files = L.generator_files(wildcards.fold, wildcards.model, wildcards.rep, group)
    return {"checkpoint": files["checkpoint"], "stats": files["stats"]}


def generator_checkpoint(wildcards):
    return trained_generator(wildcards)["checkpoint"]


def generator_manifests(wildcards):
    """Synthetic manifests (one per class) of one generator replicate in one fold."""
    return {
        cls: L.synthetic_files(wildcards.fold, wildcards.model, wildcards.rep, cls)[
            "manifest"
        ]
        for cls in CLASSES
    }


def arm_synthetic(wildcards):
    """Synthetic manifests an arm draws from (one per class, of the seed's generator replicate), or nothing for
    the real-only arms and the baselines."""
    model = arm_generator(wildcards.arm)
    if model is None:
        return {}
    rep = arm_replicate(wildcards)
    return {
        cls: L.synthetic_files(wildcards.fold, model, rep, cls)["manifest"]
        for cls in CLASSES
    }


def quality_files(wildcards=None):
    return [
        L.quality(f, m, r, c)
        for f, m, r in generator_runs(FOLDS, MODELS, REPLICATES)
        for c in CLASSES
    ]


def tstr_inputs(wildcards=None):
    """tstr.json and tstr_predictions.csv of every TSTR run, in the same order (one list of runs makes both): the
    subject bootstrap of the generator table pairs them by position and reads model, fold, replicate from the JSON.
    """
    runs = [L.tstr_files(*run) for run in generator_runs(FOLDS, MODELS, REPLICATES)]
    return {
        "tstr": [run["json"] for run in runs],
        "tstr_predictions": [run["predictions"] for run in runs],
    }


def metrics_files(name):
    return [
        f"{L.classifier_dir(*run)}/{name}"
        for run in classifier_runs(FOLDS, arms(), SEEDS)
    ]


def prediction_inputs(wildcards=None):
    """metrics.json and predictions.csv of every classifier run, in the same order: the subject bootstrap
    pairs them by position and reads arm, seed (and fold) from metrics.json, so it needs no path layout.
    """
    return {
        "metrics": metrics_files("metrics.json"),
        "predictions": metrics_files("predictions.csv"),
    }


# The reference's protocol (workflow/rules/paper_protocol.smk): its own folders, one table of every image.
PP = PAPER_PROTOCOL
PAPER_SPLIT = L.paper_split()


def paper_generator_checkpoint(wildcards):
    group = generator_group(wildcards.model, wildcards.cls)
    return L.paper_generator_files(wildcards.model, group)["checkpoint"]


def paper_arm_synthetic(wildcards):
    """The paper-protocol generator's synthetic manifests an arm draws from (one per class), or nothing."""
    model = arm_generator(wildcards.arm)
    if model is None:
        return {}
    return {cls: L.paper_synthetic_files(model, cls)["manifest"] for cls in CLASSES}


def paper_metrics_files(name="metrics_paper_protocol.json"):
    return [f"{L.paper_classifier_dir(a, s)}/{name}" for a in arms() for s in SEEDS]


TABLE_PARAMS = dict(
    config_name=config["config_name"],
    seeds=SEEDS,
    folds=len(FOLDS),
    replicates=len(REPLICATES),
    method_order=MODELS + list(config["classifier"]["baselines"]),
)

# The bootstrap (two-level by default: test subjects and training runs) of the classification table, the
# comparisons table and the forest plot (one seed, so all three show the same resamples), and of the TSTR columns
# of the generator quality table.
BOOTSTRAP = dict(
    resamples=config["evaluation"]["bootstrap"],
    ci=config["evaluation"]["ci"],
    seed=config["evaluation"]["bootstrap_seed"],
    interval=config["evaluation"]["interval"],
)
# Which comparisons the comparisons table and the forest plot make, and the metric Holm's correction covers.
COMPARE = dict(
    references=list(config["evaluation"]["compare"]),
    primary=config["evaluation"]["primary"],
)
