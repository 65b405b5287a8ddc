"""Pre-flight: what a validated study will cost, and the settings refused before any job runs.

Read when the workflow is parsed (and by `catvae validate-config`), so it must stay cheap: it counts jobs from the
config with the same lists the Snakefile expands (not by building the DAG), reads no image, lists at most the
subject folders of a BraTS root, and imports no torch. What it refuses is what would otherwise fail or silently
skew a study hours later: a dataset folder that is not there, more cross-validation folds than subjects, and
outputs that cannot fit on the disk under `results/`.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from catvae.config import check_dataset_root, raise_problems
from catvae.data.brats.slicing import candidate_slices, parse_selection
from catvae.data.kinds import dataset_kind
from catvae.registry import generator
from catvae.vocabulary.arms import BALANCE, study_arms  # noqa: F401 - the arms list (re-exported: callers plan with it)
from catvae.vocabulary.layout import LATENT_MODEL, Layout

#: Bytes of a PNG's fixed parts: signature, IHDR and IEND chunks.
_PNG_FIXED = 8 + 25 + 12
#: Pillow splits the image data into IDAT chunks (12 bytes of header and checksum each), measured about 12 KB apart
#: on random 512 px images; one chunk per 8 KB keeps the bound safe (tests/test_preflight.py checks it).
_IDAT_CHUNK = 8192


def png_bytes(image_size: int) -> int:
    """Upper bound of one 8-bit grayscale PNG of side `image_size` as `save_png` writes it.

    The image data (one filter byte per row) through zlib's worst case (`deflateBound`: data that does not compress
    at all), in IDAT chunks, plus the fixed chunks. Real slices and synthetic images compress (dark background), so
    the true size is smaller; a test checks the bound on random pixels.
    """
    raw = image_size * (image_size + 1)
    deflated = raw + (raw >> 12) + (raw >> 14) + (raw >> 25) + 13
    return deflated + 12 * -(-deflated // _IDAT_CHUNK) + _PNG_FIXED


def job_counts(cfg: Mapping[str, Any], classes: Sequence[str]) -> dict[str, int]:
    """Jobs per rule that `snakemake` plans for a fresh run of `cfg` (rules with no job left out)."""
    folds = cfg["evaluation"]["folds"]
    reps = cfg["generators"]["replicates"]
    models = list(cfg["generators"]["models"])
    arms = study_arms(models, cfg["synthesis"]["targets"], cfg["classifier"]["baselines"])
    per_fold_rep = folds * reps
    has_cvae = LATENT_MODEL in models
    paper = int(cfg["classifier"]["paper_protocol"])
    counts = {
        "phantom": int(dataset_kind(cfg["dataset"]).phantom_cohort),
        "extract": 1,
        "split": folds,
        "train_generator": per_fold_rep * sum(len(generator(m).groups(classes)) for m in models),
        "synthesise": per_fold_rep * len(models) * len(classes),
        "evaluate_generator": per_fold_rep * len(models) * len(classes),
        "tstr": per_fold_rep * len(models),
        "export_latents": int(has_cvae),  # the latent figure reads fold 0, replicate 0
        "train_classifier": folds * len(arms) * len(cfg["seeds"]),
        "generator_quality_table": int(bool(models)),
        "classification_table": 1,
        "comparisons_table": 1,
        # the reference's protocol, apart (workflow/rules/paper_protocol.smk): no folds, no replicates
        "paper_protocol_split": int(paper),
        "train_paper_generator": paper * sum(len(generator(m).groups(classes)) for m in models),
        "synthesise_paper": paper * len(models) * len(classes),
        "paper_protocol_classifier": paper * len(arms) * len(cfg["seeds"]),
        "paper_protocol_table": int(paper),
        "protocol_inflation": int(paper),
        "confusion_figure": 1,
        "effects_figure": 1,
        "learning_curves_figure": 1,
        "samples_figure": int(bool(models)),
        "latent_figure": int(has_cvae),
        "provenance": 1,
        "all": 1,
    }
    return {rule: n for rule, n in counts.items() if n}


def subject_count(dataset: Mapping[str, Any]) -> int | None:
    """Subjects known before extraction: the phantom's `n_subjects`, a BraTS root's subject folders; else None."""
    return dataset_kind(dataset).subjects(dataset)


def manifest_path(cfg: Mapping[str, Any]) -> Path:
    """Where `extract` writes the slice manifest (`results/<dataset.name>/data/manifest.csv`)."""
    return Path(Layout.of(cfg).data("manifest"))


def slice_bound(dataset: Mapping[str, Any], subjects: int | None) -> int | None:
    """Most slices extraction can write (every candidate slice of every subject and modality), or None if unknown.

    The phantom's volume shape is in the config; for BraTS only the `center` selection's count is shape-free.
    """
    if subjects is None:
        return None
    selection = parse_selection(dataset["selection"])
    if dataset_kind(dataset).phantom_cohort:  # the phantom's volume shape is in the config
        per_volume = len(candidate_slices(dataset["phantom"]["shape"], dataset["planes"], selection))
    elif selection.mode == "center":
        per_volume = len(dataset["planes"]) * selection.k
    else:
        return None
    return subjects * len(dataset["modalities"]) * per_volume


def _manifest_class_counts(path: Path) -> Counter | None:
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        return Counter(row.get("class") for row in csv.DictReader(handle))


@dataclass(frozen=True)
class Preflight:
    """The cost of one study, computed from its config (see `plan`)."""

    jobs: dict[str, int]
    classes: list[str]
    #: synthetic images per generator, class, fold and replicate (an upper bound), None when unknown
    synthetic_per_class: int | None
    #: where `synthetic_per_class` came from (a sentence for the summary)
    synthetic_source: str
    slices: int | None
    disk_bytes: int
    results: Path

    def summary(self) -> str:
        """A few lines for stderr: jobs by rule, synthetic images per generator and class, the disk estimate."""
        jobs = ", ".join(f"{rule} {n}" for rule, n in self.jobs.items())
        n = "unknown" if self.synthetic_per_class is None else f"at most {self.synthetic_per_class:,}"
        slices = "unknown" if self.slices is None else f"at most {self.slices:,}"
        return "\n".join([
            f"catvae pre-flight: {sum(self.jobs.values())} jobs ({jobs})",
            f"  synthetic images per generator and class, in each fold and replicate: {n} ({self.synthetic_source})",
            f"  extracted slices: {slices}",
            f"  disk estimate: {size_text(self.disk_bytes)} under {self.results}/ (synthetic and extracted PNGs, each "
            "at its uncompressed size; checkpoints are added when a run starts, logs and tables not counted)",
        ])


def plan(cfg: Mapping[str, Any], classes: Sequence[str]) -> Preflight:
    """Jobs, synthetic image counts and the PNG disk estimate of a validated config with classes `classes`."""
    ds = cfg["dataset"]
    slices = slice_bound(ds, subject_count(ds))
    manifest = manifest_path(cfg)
    counts = _manifest_class_counts(manifest)
    numbers = [int(t) for t in cfg["synthesis"]["targets"] if not isinstance(t, str)]
    source = "the largest target"
    if BALANCE in cfg["synthesis"]["targets"]:
        majority = max(counts.values()) if counts else slices
        source = (f"'balance' bounded by the largest class in {manifest}" if counts
                  else "'balance' bounded by every slice extraction can write" if slices is not None
                  else "'balance' needs the class counts, known after extraction")
        numbers += [majority] if majority is not None else []
        per_class: int | None = max(numbers) if majority is not None else None
    else:
        per_class = max(numbers)
    tstr = cfg["quality"]["tstr_images"]
    if per_class is not None and tstr and tstr > per_class:
        per_class, source = tstr, "quality.tstr_images"
    source += "; the real images a class already has are not subtracted"
    models = cfg["generators"]["models"]
    images = (per_class or 0) * len(models) * len(classes) * cfg["evaluation"]["folds"] * cfg["generators"]["replicates"]
    disk = (images + (slices or 0)) * png_bytes(ds["image_size"])
    return Preflight(job_counts(cfg, classes), list(classes), per_class, source, slices, disk,
                     Path(cfg["results"]))


def checkpoint_bytes(cfg: Mapping[str, Any], classes: Sequence[str], modalities: Sequence[str]) -> dict[str, int]:
    """Bytes of the study's checkpoints: every generator's checkpoint.pt and every classifier run's, in total.

    From the models' state dicts built on PyTorch's meta device (no memory, no weights): a generator's checkpoint
    also holds its Adam state (two float32 moments per trainable parameter), a classifier's only its weights.
    While a generator trains, its resume file (about as large again, plus a best-epoch copy of the weights) exists
    beside it and is deleted when it completes. Imports torch (seconds), so only `catvae validate-config --show`
    calls it, not the workflow when it is read.
    """
    import torch

    from catvae.classifier.cnn import build_cnn
    from catvae.models.factory import build_generator, count_parameters

    def size(module: torch.nn.Module) -> int:
        return sum(t.numel() * t.element_size() for t in module.state_dict().values())

    ds, clf = cfg["dataset"], cfg["classifier"]
    runs = cfg["evaluation"]["folds"] * cfg["generators"]["replicates"]
    generators = 0
    with torch.device("meta"):
        for name in cfg["generators"]["models"]:
            model = build_generator(name, image_size=ds["image_size"], channels=ds["channels"],
                                    options=cfg["generators"][name], n_classes=len(classes),
                                    n_modalities=len(modalities))
            one = size(model) + 2 * 4 * count_parameters(model)
            generators += runs * len(generator(name).groups(classes)) * one
        cnn = size(build_cnn(clf["image_size"], clf["channels"], len(classes)))
    return {"generators": generators, "classifiers": cnn * job_counts(cfg, classes)["train_classifier"]}


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system that holds `path` (its nearest existing folder: results/ may not exist yet)."""
    folder = Path(path).absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _written_bytes(folder: Path) -> int:
    """Bytes already under `folder` (a resumed run re-uses them, so they count as space the estimate may take)."""
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def disk_problems(
    cfg: Mapping[str, Any], preflight: Preflight, checkpoints: Mapping[str, int] | None = None,
    free_space: Callable[[Path], int] = free_bytes,
) -> list[str]:
    """The disk check: the PNG estimate (plus `checkpoints` when given) and `preflight.reserve_gb` against the free
    space under `results`, plus what a previous run of the same dataset name already wrote there (a resumed run
    re-uses it). Off when `preflight.check_disk` is false."""
    options = cfg["preflight"]
    if not options["check_disk"]:
        return []
    pngs, saved = preflight.disk_bytes, sum((checkpoints or {}).values())
    need = pngs + saved + int(options["reserve_gb"] * 1e9)
    free = free_space(preflight.results)
    if need <= free or need <= free + _written_bytes(preflight.results / cfg["dataset"]["name"]):
        return []
    what = (f"{size_text(pngs)} of PNGs ({preflight.synthetic_per_class or 0:,} synthetic images per generator and "
            f"class in each fold and replicate and {preflight.slices or 0:,} extracted slices, at most "
            f"{size_text(png_bytes(cfg['dataset']['image_size']))} each)")
    if checkpoints is not None:
        what += f" and {size_text(saved)} of checkpoints"
    key = "synthesis.targets" if pngs >= saved else "evaluation.folds"
    return [
        f"config key '{key}': the study needs an estimated {what}, plus preflight.reserve_gb "
        f"{options['reserve_gb']:g} GB, but only {size_text(free)} is free under {preflight.results.absolute()}/; "
        "lower synthesis.targets or quality.tstr_images (PNGs), seeds, evaluation.folds or generators.replicates "
        "(PNGs and checkpoints), free space, or set preflight.check_disk: false"
    ]


def check_study(
    cfg: Mapping[str, Any], classes: Sequence[str], *, free_space: Callable[[Path], int] = free_bytes
) -> Preflight:
    """The checks made when the workflow is read: refuse, in one message, a study that cannot run as configured;
    return its pre-flight plan otherwise.

    Refused: a missing dataset folder, `evaluation.folds` above the subjects known before extraction, and the PNGs'
    disk estimate above the free space (`disk_problems`). `free_space` is the probe, replaceable in tests.
    """
    check_dataset_root(cfg["dataset"])
    problems = []
    folds, subjects = cfg["evaluation"]["folds"], subject_count(cfg["dataset"])
    if subjects is not None and folds > subjects:
        where = dataset_kind(cfg["dataset"]).subjects_where(cfg["dataset"])
        problems.append(f"config key 'evaluation.folds' is {folds} but there are only {subjects} subjects "
                        f"({where}) to deal into test folds")
    preflight = plan(cfg, classes)
    raise_problems(problems + disk_problems(cfg, preflight, free_space=free_space))
    return preflight


def check_outputs_fit(
    cfg: Mapping[str, Any], classes: Sequence[str], modalities: Sequence[str], *,
    free_space: Callable[[Path], int] = free_bytes,
) -> dict[str, int]:
    """The disk check with the checkpoints counted too; returns their sizes (see `checkpoint_bytes`).

    It imports torch (seconds), so the workflow runs it when a run starts (`onstart`, not in a dry run) and
    `catvae validate-config` always: both before any job.
    """
    sizes = checkpoint_bytes(cfg, classes, modalities)
    raise_problems(disk_problems(cfg, plan(cfg, classes), sizes, free_space))
    return sizes


def checkpoint_text(sizes: Mapping[str, int]) -> str:
    """The checkpoint line of `validate-config --show`."""
    return (f"  checkpoints: {size_text(sum(sizes.values()))} (generators {size_text(sizes['generators'])} with "
            f"their Adam state, classifiers {size_text(sizes['classifiers'])})")


def size_text(n: float) -> str:
    """Bytes in decimal units (what `df -H` shows)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
