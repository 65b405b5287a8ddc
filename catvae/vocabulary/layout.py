"""Where every result file lives, under `results/<dataset.name>/` (docs/ARCHITECTURE.md, "File contracts"), and the
seeds of generator replicates.

The rules name their files with a `Layout` (the default arguments are the rules' wildcards, so
`layout.generator_dir()` is the wildcard pattern and `layout.generator_dir(0, "vae", 0, "Tumor")` one folder); the
library's `JobFiles` classes take the file names of one job's folder from the `*_FILES` maps here. Torch-free: the
Snakefile reads it when it plans the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from catvae.errors import CatvaeError
from catvae.registry import ALL_CLASSES

#: The files `extract` writes under `data/` (every dataset kind).
DATASET_FILES: dict[str, str] = {
    "manifest": "manifest.csv",
    "discarded": "discarded.csv",
    "skipped": "skipped_subjects.csv",
    "slices": "slices",
}
#: The files a generator training job writes in its folder.
GENERATOR_FILES: dict[str, str] = {"checkpoint": "checkpoint.pt", "history": "history.csv", "stats": "train_stats.json"}
#: The files a synthesis job writes in its folder (the workflow's; `catvae synthesise` writes its images beside them).
SYNTHETIC_FILES: dict[str, str] = {"manifest": "manifest.csv", "info": "info.json", "images": "images"}
#: The files of one TSTR run, in its generator replicate's folder.
TSTR_FILES: dict[str, str] = {"json": "tstr.json", "predictions": "tstr_predictions.csv"}
#: The files one classifier run writes in its folder.
CLASSIFIER_FILES: dict[str, str] = {
    "metrics": "metrics.json",
    "history": "history.csv",
    "predictions": "predictions.csv",
    "confusion": "confusion.csv",
    "confusion_png": "confusion.png",
    "checkpoint": "checkpoint.pt",
    "training_set": "training_set.csv",
}
#: The files one paper-protocol classifier run writes in its folder.
PAPER_CLASSIFIER_FILES: dict[str, str] = {
    "metrics": "metrics_paper_protocol.json",
    "history": "history.csv",
    "training_set": "training_set.csv",
}
#: The folder name of the reference's protocol (its own split, generators, synthetic images and classifiers).
PAPER_PROTOCOL = "paper_protocol"
#: The generator whose latent space the latent figure shows (fold 0, replicate 0).
LATENT_MODEL = "cvae"

FOLD, MODEL, REP, GROUP, CLS, ARM, SEED = "{fold}", "{model}", "{rep}", "{group}", "{cls}", "{arm}", "{seed}"


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of generator replicate `replicate` (training and synthesis): `seed + replicate`, so replicate 0 is
    the single generator of a study without replicates."""
    if replicate < 0:
        raise CatvaeError(f"generator replicate must be >= 0, got {replicate}")
    return int(seed) + int(replicate)


def arm_replicate(seed: int, replicates: int) -> int:
    """The generator replicate a generator arm's classifier seed `seed` draws from: `seed mod replicates`."""
    return int(seed) % int(replicates)


def classifier_runs(folds: Sequence[Any], arms: Sequence[str], seeds: Sequence[Any]) -> Iterator[tuple[Any, str, Any]]:
    """(fold, arm, seed) of every classifier run, in the order the report rules list their files."""
    return ((f, a, s) for f in folds for a in arms for s in seeds)


def generator_runs(folds: Sequence[Any], models: Sequence[str], replicates: Sequence[Any]) -> Iterator[tuple]:
    """(fold, model, replicate) of every generator replicate, in the order the report rules list their files."""
    return ((f, m, r) for f in folds for m in models for r in replicates)


def _in_folder(folder: str, names: Mapping[str, str]) -> dict[str, str]:
    """A job folder's files: each named file of `names` under `folder`."""
    return {name: f"{folder}/{file}" for name, file in names.items()}


@dataclass(frozen=True)
class Layout:
    """The results tree of one study: `root` is `results/<dataset.name>`."""

    root: str

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "Layout":
        return cls(f"{config['results']}/{config['dataset']['name']}")

    # ---------------------------------------------------------------------------------------------------- data

    def phantom(self) -> str:
        """The phantom cohort (BraTS layout) the `phantom` rule writes."""
        return f"{self.root}/phantom"

    def data(self, name: str) -> str:
        """One of `extract`'s outputs (a key of `DATASET_FILES`)."""
        return f"{self.root}/data/{DATASET_FILES[name]}"

    def split(self, fold: Any = FOLD) -> str:
        return f"{self.root}/data/fold{fold}/split.csv"

    def paper_split(self) -> str:
        return f"{self.root}/data/{PAPER_PROTOCOL}/split.csv"

    # ---------------------------------------------------------------------------------------------- generators

    def generator_run(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP) -> str:
        """One generator replicate's folder (its groups' folders and its TSTR files)."""
        return f"{self.root}/generators/fold{fold}/{model}/rep{rep}"

    def generator_dir(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP, group: str = GROUP) -> str:
        return f"{self.generator_run(fold, model, rep)}/{group}"

    def generator_files(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP, group: str = GROUP) -> dict:
        return _in_folder(self.generator_dir(fold, model, rep, group), GENERATOR_FILES)

    def quality(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP, cls: str = CLS) -> str:
        return f"{self.generator_dir(fold, model, rep, cls)}/quality.json"

    def tstr_files(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP) -> dict:
        return _in_folder(self.generator_run(fold, model, rep), TSTR_FILES)

    def latents(self, fold: Any = FOLD, rep: Any = REP) -> str:
        """The conditional VAE's encoder means of a fold's images (the latent figure)."""
        return f"{self.generator_dir(fold, LATENT_MODEL, rep, ALL_CLASSES)}/latents.npz"

    def synthetic_dir(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP, cls: str = CLS) -> str:
        return f"{self.root}/synthetic/fold{fold}/{model}/rep{rep}/{cls}"

    def synthetic_files(self, fold: Any = FOLD, model: str = MODEL, rep: Any = REP, cls: str = CLS) -> dict:
        return _in_folder(self.synthetic_dir(fold, model, rep, cls), SYNTHETIC_FILES)

    # ---------------------------------------------------------------------------------------------- classifier

    def classifier_dir(self, fold: Any = FOLD, arm: str = ARM, seed: Any = SEED) -> str:
        return f"{self.root}/classifier/fold{fold}/{arm}/seed{seed}"

    def classifier_files(self, fold: Any = FOLD, arm: str = ARM, seed: Any = SEED) -> dict:
        return _in_folder(self.classifier_dir(fold, arm, seed), CLASSIFIER_FILES)

    # ---------------------------------------------------------------------------------------- paper protocol

    def paper_generator_dir(self, model: str = MODEL, group: str = GROUP) -> str:
        return f"{self.root}/generators/{PAPER_PROTOCOL}/{model}/{group}"

    def paper_generator_files(self, model: str = MODEL, group: str = GROUP) -> dict:
        return _in_folder(self.paper_generator_dir(model, group), GENERATOR_FILES)

    def paper_synthetic_dir(self, model: str = MODEL, cls: str = CLS) -> str:
        return f"{self.root}/synthetic/{PAPER_PROTOCOL}/{model}/{cls}"

    def paper_synthetic_files(self, model: str = MODEL, cls: str = CLS) -> dict:
        return _in_folder(self.paper_synthetic_dir(model, cls), SYNTHETIC_FILES)

    def paper_classifier_dir(self, arm: str = ARM, seed: Any = SEED) -> str:
        return f"{self.root}/classifier/{PAPER_PROTOCOL}/{arm}/seed{seed}"

    def paper_classifier_files(self, arm: str = ARM, seed: Any = SEED) -> dict:
        return _in_folder(self.paper_classifier_dir(arm, seed), PAPER_CLASSIFIER_FILES)

    # -------------------------------------------------------------------------------------------------- report

    def table(self, name: str, ext: str = "csv") -> str:
        return f"{self.root}/tables/{name}.{ext}"

    def figure(self, name: str) -> str:
        return f"{self.root}/figures/{name}.png"

    def provenance(self) -> str:
        return f"{self.root}/provenance.json"

    def resolved_config(self) -> str:
        return f"{self.root}/config.resolved.yaml"

    def log(self, name: str) -> str:
        """A job's log, `logs/<name>.log` (`name` like `train_generator/fold{fold}_{model}_rep{rep}_{group}`)."""
        return f"{self.root}/logs/{name}.log"

    def benchmark(self, name: str) -> str:
        """A job's benchmark, `benchmarks/<name>.tsv` (the same `name` as its log)."""
        return f"{self.root}/benchmarks/{name}.tsv"
