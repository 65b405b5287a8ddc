"""The `catvae` command: each step of the study, usable without Snakemake.

Settings come from a study config (the same YAML Snakemake reads, validated the same way); without `--config`, the
schema's defaults (what `catvae validate-config --show` prints), so every subcommand runs in any folder, not only in
a checkout holding `config/config.yaml`. Paths come from the command line. Snakemake remains the way to run the whole study; the CLI is for one step on its own, a debugger,
or a notebook-free check of a dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from catvae import __version__
from catvae.errors import CatvaeError
from catvae.logs import setup_logging
from catvae.registry import ALL_CLASSES, GENERATORS
from catvae.vocabulary import steps

SCHEMA_DEFAULTS = "the schema's defaults"


def _config(args: argparse.Namespace) -> dict:
    """The validated config of `--config`, or the schema's defaults alone when none is given."""
    from catvae.config import load_config, validate_config

    return load_config(args.config) if args.config else validate_config({})


def cmd_validate_config(args: argparse.Namespace) -> None:
    """The workflow's own checks, in its order: the schema and cross-key rules, then the pre-flight (dataset
    folder, folds against subjects, disk space with the checkpoints), so a config this calls valid is one that
    `snakemake` starts."""
    from catvae.config import check_dataset_root, dump_config
    from catvae.data.kinds import dataset_classes, dataset_modalities
    from catvae.preflight import check_outputs_fit, check_study, checkpoint_text

    cfg = _config(args)
    check_dataset_root(cfg["dataset"])
    classes = dataset_classes(cfg["dataset"])
    preflight = check_study(cfg, classes)
    checkpoints = check_outputs_fit(cfg, classes, dataset_modalities(cfg["dataset"]))
    if args.show:
        print(dump_config(cfg, [args.config] if args.config else []), end="")
        print(preflight.summary(), file=sys.stderr)
        print(checkpoint_text(checkpoints), file=sys.stderr)
    else:
        print(f"{args.config or SCHEMA_DEFAULTS}: valid")


def cmd_phantom(args: argparse.Namespace) -> None:
    from catvae.data.brats.phantom import write_phantom_cohort

    cfg = _config(args)["dataset"]["phantom"]
    shape = tuple(args.shape) if args.shape else tuple(cfg["shape"])
    n = args.subjects if args.subjects is not None else cfg["n_subjects"]
    seed = args.seed if args.seed is not None else cfg["seed"]
    ids = write_phantom_cohort(args.out, n_subjects=n, shape=shape, seed=seed, threads=args.threads)
    print(f"wrote {len(ids)} phantom subjects to {args.out}")


def cmd_extract(args: argparse.Namespace) -> None:
    from catvae.data.kinds import BratsKind, dataset_kind, prepare_dataset

    dataset = _config(args)["dataset"]
    if args.root:
        dataset["root"] = args.root
        if dataset_kind(dataset).phantom_cohort:  # --root names a BraTS-layout folder: the phantom is read as one
            dataset["kind"] = BratsKind.name
    cohort = args.root if dataset_kind(dataset).phantom_cohort else None
    summary = prepare_dataset(dataset, args.out, cohort=cohort, threads=args.threads)
    print(summary)


def cmd_split(args: argparse.Namespace) -> None:
    from catvae.data.split import write_split

    cfg = _config(args)
    split = cfg["dataset"]["split"]
    seed = args.seed if args.seed is not None else split["seed"]
    folds = cfg["evaluation"]["folds"]
    write_split(args.manifest, args.out, {k: split[k] for k in ("train", "val", "test")}, seed, fold=args.fold,
                folds=folds)
    print(f"wrote {args.out}" + (f" (fold {args.fold} of {folds})" if folds > 1 else ""))


def cmd_train_generator(args: argparse.Namespace) -> None:
    from catvae.data.kinds import dataset_classes, dataset_modalities
    from catvae.generators.train import train_generator
    from catvae.vocabulary.layout import replicate_seed

    cfg = _config(args)
    ds = cfg["dataset"]
    stats = train_generator(
        args.model,
        args.split,
        args.out,
        group=args.group,
        image_size=ds["image_size"],
        channels=ds["channels"],
        options=steps.training_options(cfg, args.model),
        classes=dataset_classes(ds),
        modalities=dataset_modalities(ds),
        seed=replicate_seed(cfg["synthesis"]["seed"], args.replicate),
        device=cfg["device"],
        threads=args.threads,
    )
    print(stats)


def cmd_synthesise(args: argparse.Namespace) -> None:
    from catvae.generators.checkpoint import load_checkpoint
    from catvae.generators.synthesis import synthesise
    from catvae.vocabulary.layout import replicate_seed

    cfg = _config(args)
    model = load_checkpoint(args.checkpoint)["model_name"]
    info = synthesise(
        args.checkpoint,
        args.split,
        args.out,
        class_name=args.cls,
        targets=cfg["synthesis"]["targets"],
        tstr_images=steps.tstr_images(cfg),
        context_mode=steps.synthesis_option(cfg, model, "context"),
        sampling=steps.synthesis_option(cfg, model, "sampling"),
        seed=replicate_seed(cfg["synthesis"]["seed"], args.replicate),
        device=cfg["device"],
        batch_size=cfg["synthesis"]["batch_size"],
        threads=args.threads,
    )
    print(info)


def cmd_classify(args: argparse.Namespace) -> None:
    from catvae.classifier.train import run_arm
    from catvae.data.kinds import dataset_classes

    cfg = _config(args)
    classes = dataset_classes(cfg["dataset"])
    synthetic = {}
    if args.synthetic:
        synthetic = {cls: str(Path(args.synthetic) / cls / "manifest.csv") for cls in classes}
    metrics = run_arm(
        args.split,
        args.out,
        arm=args.arm,
        seed=args.seed,
        classes=classes,
        synthetic_manifests=synthetic,
        options=steps.classifier_options(cfg),
        config_name=cfg["config_name"],
        fold=args.fold,
        device=cfg["device"],
        threads=args.threads,
    )
    print(f"accuracy {metrics['accuracy']:.3f} on {metrics['n_test']} held-out test images "
          f"(epoch {metrics['selected_epoch']})")


def cmd_tstr(args: argparse.Namespace) -> None:
    from catvae.classifier.tstr import run_tstr
    from catvae.data.kinds import dataset_classes
    from catvae.vocabulary.layout import replicate_seed

    cfg = _config(args)
    classes = dataset_classes(cfg["dataset"])
    result = run_tstr(
        args.split,
        {cls: str(Path(args.synthetic) / cls / "manifest.csv") for cls in classes},
        args.out,
        args.predictions or Path(args.out).with_name("tstr_predictions.csv"),
        model=args.model,
        classes=classes,
        tstr_images=steps.tstr_images(cfg),
        targets=cfg["synthesis"]["targets"],
        options=steps.classifier_options(cfg),
        seed=replicate_seed(cfg["synthesis"]["seed"], args.replicate),
        config_name=cfg["config_name"],
        select=cfg["quality"]["tstr_select"],
        fold=args.fold,
        replicate=args.replicate,
        device=cfg["device"],
        threads=args.threads,
    )
    print(f"TSTR balanced accuracy {result['balanced_accuracy']:.3f} on {result['n_test']} real test images")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catvae", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_text: str,
            threads: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help="study config YAML (default: the schema's defaults, whatever the folder; "
                                        "the demo's settings are --config config/config.yaml)")
        if threads:  # only where a step has work to spread: an option that does nothing would mislead
            p.add_argument("--threads", type=int, default=1, help="worker processes / torch threads (default 1)")
        p.set_defaults(func=func)
        return p

    p = add("validate-config", cmd_validate_config, "validate a study config and fill its defaults", threads=False)
    p.add_argument("--show", action="store_true",
                   help="print the config with every default filled in (stdout) and what the study will cost (stderr)")

    p = add("phantom", cmd_phantom, "write the embedded BraTS-format phantom cohort")
    p.add_argument("--out", required=True, help="folder to write <ID>/<ID>_<modality>.nii.gz into")
    p.add_argument("--subjects", type=int, help="number of subjects (default: dataset.phantom.n_subjects)")
    p.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"), help="volume shape")
    p.add_argument("--seed", type=int, help="cohort seed (default: dataset.phantom.seed)")

    p = add("extract", cmd_extract, "cut a dataset into labelled 2D slices with manifest.csv and discarded.csv")
    p.add_argument("--root", help="BraTS folder (default: dataset.root of the config)")
    p.add_argument("--out", required=True, help="output folder (slices/, manifest.csv, discarded.csv)")

    p = add("split", cmd_split, "split manifest.csv by subject into train / val / test", threads=False)
    p.add_argument("--manifest", required=True, help="manifest.csv from `catvae extract`")
    p.add_argument("--out", required=True, help="split.csv to write")
    p.add_argument("--seed", type=int, help="split seed (default: dataset.split.seed)")
    p.add_argument("--fold", type=int, default=0, help="which fold to write when evaluation.folds > 1 (0-based)")

    p = add("train-generator", cmd_train_generator, "train one generator on the training split")
    p.add_argument("--model", required=True, choices=list(GENERATORS), help="which generator to train")
    per_class = ", ".join(n for n, spec in GENERATORS.items() if not spec.conditional)
    conditional = ", ".join(n for n, spec in GENERATORS.items() if spec.conditional)
    p.add_argument("--group", required=True, help=f"class name ({per_class}) or '{ALL_CLASSES}' ({conditional})")
    p.add_argument("--split", required=True, help="split.csv")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt, history.csv, train_stats.json")
    p.add_argument("--replicate", type=int, default=0, help="generator replicate (seed synthesis.seed + replicate)")

    p = add("synthesise", cmd_synthesise, "generate one class's synthetic images for the largest target")
    p.add_argument("--checkpoint", required=True, help="generators/fold<f>/<model>/rep<r>/<group>/checkpoint.pt")
    p.add_argument("--class", dest="cls", required=True, help="class to generate")
    p.add_argument("--split", required=True, help="split.csv")
    p.add_argument("--out", required=True, help="folder for the PNGs, manifest.csv and info.json")
    p.add_argument("--replicate", type=int, default=0, help="generator replicate (seed synthesis.seed + replicate)")

    p = add("classify", cmd_classify, "train and score one classifier arm on the held-out test split")
    p.add_argument("--arm", required=True,
                   help="none, weighted, <generator>@<target>, oversample@<target>, classic@<target>")
    p.add_argument("--split", required=True, help="split.csv")
    p.add_argument("--synthetic", help="folder with <class>/manifest.csv of one generator replicate (generator arms)")
    p.add_argument("--seed", type=int, default=0,
                   help="classifier seed: weight initialisation, batch order and resampling draws (default 0)")
    p.add_argument("--fold", type=int, default=0, help="the fold the split is (recorded in metrics.json)")
    p.add_argument("--out", required=True, help="output folder")

    p = add("tstr", cmd_tstr, "train the CNN on one generator's synthetic images only, score it on real test images")
    p.add_argument("--model", required=True, choices=list(GENERATORS), help="which generator's images to train on")
    p.add_argument("--split", required=True, help="split.csv")
    p.add_argument("--synthetic", required=True, help="folder with <class>/manifest.csv of the generator replicate")
    p.add_argument("--fold", type=int, default=0, help="the fold the split is (recorded in the result)")
    p.add_argument("--replicate", type=int, default=0, help="generator replicate (seed synthesis.seed + replicate)")
    p.add_argument("--out", required=True, help="tstr.json to write")
    p.add_argument("--predictions", help="test predictions CSV to write (default: tstr_predictions.csv beside --out)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        args.func(args)
    except CatvaeError as exc:
        print(f"catvae: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
