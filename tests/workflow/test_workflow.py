"""End to end: the whole study through Snakemake on a tiny phantom, then checks a reviewer would make."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from catvae.report.tables import label
from conftest import dry_run_jobs as _dry_run_jobs
from conftest import REPO, run_snakemake, write_config

pytestmark = pytest.mark.workflow


def _results(workdir: Path) -> Path:
    return workdir / "results" / "tiny"


def _arms(config: dict) -> list[str]:
    targets = [str(t) for t in config["synthesis"]["targets"]]
    baselines = config["classifier"]["baselines"]
    arms = ["none"] + [b for b in baselines if b == "weighted"]
    arms += [f"{m}@{t}" for m in config["generators"]["models"] for t in targets]
    return arms + [f"{b}@{t}" for b in baselines if b != "weighted" for t in targets]


def _folds(config: dict) -> list[int]:
    return list(range(config["evaluation"]["folds"]))


def _split(workdir: Path, fold: int) -> pd.DataFrame:
    return pd.read_csv(_results(workdir) / "data" / f"fold{fold}" / "split.csv", dtype={"subject": str})


def test_data_stage_outputs(tiny_study):
    data = _results(tiny_study) / "data"
    manifest = pd.read_csv(data / "manifest.csv")
    assert list(manifest.columns[:8]) == [
        "subject", "modality", "plane", "slice_index", "class", "tumor_voxels", "brain_fraction", "path",
    ]
    assert set(manifest["class"]) == {"Tumor", "NoTumor"}
    assert (manifest.loc[manifest["class"] == "Tumor", "tumor_voxels"] > 0).all()
    assert (manifest.loc[manifest["class"] == "NoTumor", "tumor_voxels"] == 0).all()
    assert all((data / p).is_file() for p in manifest["path"])
    assert (data / "discarded.csv").is_file()
    for fold in (0, 1):
        split = _split(tiny_study, fold)
        partitions = split.groupby("subject")["partition"].nunique()
        assert (partitions == 1).all(), "a subject appears in two partitions"
        assert set(split["partition"]) == {"train", "val", "test"}
        assert len(split) == len(manifest)  # every fold holds every image, in one of its partitions


def test_every_subject_is_tested_exactly_once_and_nothing_of_a_test_subject_is_learned(tiny_study, tiny_config):
    """k-fold: each subject in one test fold; and no test subject of a fold reaches that fold's generator training,
    synthesis context, classifier training or validation (read from what each job recorded it used)."""
    results = _results(tiny_study)
    subjects = set(pd.read_csv(results / "data" / "manifest.csv", dtype={"subject": str})["subject"])
    tested = []
    for fold in _folds(tiny_config):
        split = _split(tiny_study, fold)
        test = set(split.loc[split["partition"] == "test", "subject"])
        tested += sorted(test)
        assert not test & set(split.loc[split["partition"] != "test", "subject"])  # validation and training
        for model in tiny_config["generators"]["models"]:
            for rep in range(tiny_config["generators"]["replicates"]):
                folder = results / "generators" / f"fold{fold}" / model / f"rep{rep}"
                for stats in folder.glob("*/train_stats.json"):
                    learned = set(json.loads(stats.read_text())["train_subjects"])
                    assert learned and not learned & test, stats
                for info in (results / "synthetic" / f"fold{fold}" / model / f"rep{rep}").glob("*/info.json"):
                    assert not set(json.loads(info.read_text())["real_subjects"]) & test, info
        for arm in _arms(tiny_config):
            for seed in tiny_config["seeds"]:
                folder = results / "classifier" / f"fold{fold}" / arm / f"seed{seed}"
                trained = pd.read_csv(folder / "training_set.csv", dtype={"subject": str}, keep_default_na=False)
                assert not set(trained["subject"]) & test, folder
                predicted = pd.read_csv(folder / "predictions.csv", dtype={"subject": str})
                assert set(predicted["subject"]) == test  # scored on exactly the fold's test subjects
    assert sorted(tested) == sorted(subjects), "every subject is tested in exactly one fold"


def test_every_table_has_every_arm_class_and_seed(tiny_study, tiny_config):
    tables = _results(tiny_study) / "tables"
    classes = ["NoTumor", "Tumor"]
    quality = pd.read_csv(tables / "generator_quality.csv")
    assert {(label(m), c) for m in tiny_config["generators"]["models"] for c in classes} == set(
        zip(quality["Model"], quality["Class"])
    )
    assert len(quality) == len(tiny_config["generators"]["models"]) * len(classes)  # folds x replicates pooled
    encodes = quality["Model"] != label("ddpm")  # a diffusion model has no encoder: no reconstruction, its reason
    assert quality.loc[encodes, "SSIM"].between(-1, 1).all() and (quality.loc[encodes, "MSE"] >= 0).all()
    assert quality.loc[encodes, "SSIM std"].notna().all()
    assert quality.loc[~encodes, "SSIM"].isna().all() and len(quality[~encodes]) == len(classes)
    assert quality.loc[~encodes, "SSIM note"].str.contains("no encoder").all()
    for column in ("MS-SSIM synthetic pairs", "MS-SSIM real pairs"):  # diversity, every generator
        assert quality[column].between(0, 1).all(), column
    assert quality.groupby("Class")["MS-SSIM real pairs"].nunique().eq(1).all()  # one real figure per class
    for column in ("TSTR balanced accuracy", "TSTR AUROC"):  # pooled over folds x replicates, subject-bootstrap CI
        low, mid, high = quality[f"{column} CI low"], quality[column], quality[f"{column} CI high"]
        assert mid.between(0, 1).all() and (low <= mid + 1e-12).all() and (mid <= high + 1e-12).all(), column
    # one generator replicate: the caption says the TSTR intervals cannot hold generator variance
    assert "training variance could not be estimated" in (tables / "generator_quality.md").read_text()
    clf = pd.read_csv(tables / "classification.csv")
    arms = _arms(tiny_config)
    assert len(clf) == len(arms) * len(classes)
    for column in ("Precision", "Recall", "F1", "Accuracy"):
        values = pd.to_numeric(clf[column], errors="coerce").dropna()
        assert values.between(0, 1).all(), column
    for suffix in ("md", "tex"):
        text = (tables / f"classification.{suffix}").read_text()
        assert "tiny-test" in text, "every table says which config made it"
    for column in ("Balanced accuracy", "Macro-F1"):  # subject-bootstrap intervals beside the paper's columns
        low, mid, high = clf[f"{column} CI low"], clf[column], clf[f"{column} CI high"]
        assert mid.between(0, 1).all() and (low <= mid + 1e-12).all() and (mid <= high + 1e-12).all(), column
    text = (tables / "classification.md").read_text()
    assert "two-level bootstrap" in text and "test subjects and training runs" in text and "AUROC (pooled)" in text


def test_comparisons_table_and_forest_plot(tiny_study, tiny_config):
    tables = _results(tiny_study) / "tables"
    arms = _arms(tiny_config)
    comparisons = pd.read_csv(tables / "comparisons.csv")
    vs_oversampling = [a for a in arms if "@" in a and not a.startswith("oversample@")]
    vs_vae = [a for a in arms if a.split("@")[0] in ("catvae", "cvae") and f"vae@{a.split('@')[-1]}" in arms]
    assert len(comparisons) == (len(arms) - 1) + len(vs_oversampling) + len(vs_vae)
    for column in ("Δ Balanced accuracy", "Δ Macro-F1 (exploratory)"):
        assert (comparisons[f"{column} CI low"] <= comparisons[column] + 1e-12).all()
        assert (comparisons[column] <= comparisons[f"{column} CI high"] + 1e-12).all()
    assert comparisons["Holm p (BA)"].between(0, 1).all()
    assert (comparisons["Holm p (BA)"] >= comparisons["p (BA)"] - 1e-12).all()
    markdown = (tables / "comparisons.md").read_text()
    assert "Holm" in markdown and "tiny-test" in markdown and "9999 resamples" in markdown and "MDE (BA)" in markdown
    assert (_results(tiny_study) / "figures" / "effects.png").stat().st_size > 5000


def test_confusion_matrices_sum_to_test_size(tiny_study, tiny_config):
    for fold in _folds(tiny_config):
        split = _split(tiny_study, fold)
        n_test = int((split["partition"] == "test").sum())
        for arm in _arms(tiny_config):
            for seed in tiny_config["seeds"]:
                folder = _results(tiny_study) / "classifier" / f"fold{fold}" / arm / f"seed{seed}"
                metrics = json.loads((folder / "metrics.json").read_text())
                assert metrics["n_test"] == n_test and metrics["fold"] == fold and metrics["seed"] == seed
                assert sum(map(sum, metrics["confusion"])) == n_test
                assert 1 <= metrics["selected_epoch"] <= tiny_config["classifier"]["epochs"]
                confusion = pd.read_csv(folder / "confusion.csv", index_col=0)
                assert int(confusion.to_numpy().sum()) == n_test


def test_synthetic_counts_match_targets_and_never_reach_test(tiny_study, tiny_config):
    results = _results(tiny_study)
    replicates = tiny_config["generators"]["replicates"]
    for fold in _folds(tiny_config):
        split = _split(tiny_study, fold)
        train = split[split["partition"] == "train"]
        test = split[split["partition"] == "test"]
        n_train = train["class"].value_counts().to_dict()
        targets = tiny_config["synthesis"]["targets"]
        largest = max(int(t) if t != "balance" else max(n_train.values()) for t in targets)
        # Manifests hold paths relative to their own folder: compare resolved files, never the strings as written.
        test_paths = {str((results / "data" / f"fold{fold}" / p).resolve()) for p in test["path"]}
        train_paths = {str((results / "data" / f"fold{fold}" / p).resolve()) for p in train["path"]}
        assert test_paths and all(Path(f).is_file() for f in test_paths)
        for arm in _arms(tiny_config):
            for seed in tiny_config["seeds"]:
                # what each classifier trained on: every image, and every image an augmented copy came from
                folder = results / "classifier" / f"fold{fold}" / arm / f"seed{seed}"
                training = pd.read_csv(folder / "training_set.csv", keep_default_na=False)
                used = {str((folder / p).resolve()) for p in training["path"]}
                used |= {str((folder / p).resolve()) for p in training["origin"] if p}
                assert used and all(Path(f).is_file() for f in used), arm
                assert not used & test_paths, f"{arm} fold {fold} trained on test images"
                real = {str((folder / p).resolve()) for p in training.loc[training["source"] == "real", "path"]}
                assert real == train_paths, arm
        assert not set(train["subject"]) & set(test["subject"])
        for model in tiny_config["generators"]["models"]:
            for rep in range(replicates):
                for cls, n_real in n_train.items():
                    folder = results / "synthetic" / f"fold{fold}" / model / f"rep{rep}" / cls
                    manifest = pd.read_csv(folder / "manifest.csv")
                    # the arms' prefix, or as many as TSTR trains on, whichever is more
                    assert len(manifest) == max(0, largest - n_real, tiny_config["quality"]["tstr_images"])
                    assert not test_paths & {str((folder / p).resolve()) for p in manifest["path"]}
                tstr = json.loads((results / "generators" / f"fold{fold}" / model / f"rep{rep}" / "tstr.json")
                                  .read_text())
                assert tstr["n_train"] == len(n_train) * tiny_config["quality"]["tstr_images"]
                assert tstr["n_test"] == len(test) and 0 <= tstr["balanced_accuracy"] <= 1
                predicted = pd.read_csv(results / "generators" / f"fold{fold}" / model / f"rep{rep}"
                                        / "tstr_predictions.csv", dtype={"subject": str})
                assert sorted(predicted["path"]) == sorted(test["path"])  # scored on exactly the fold's test images
        for model in tiny_config["generators"]["models"]:
            for target in targets:
                for seed in tiny_config["seeds"]:
                    folder = results / "classifier" / f"fold{fold}" / f"{model}@{target}" / f"seed{seed}"
                    metrics = json.loads((folder / "metrics.json").read_text())
                    assert metrics["replicate"] == seed % replicates  # seed k draws from replicate k mod n
                    drawn = pd.read_csv(folder / "training_set.csv", keep_default_na=False)
                    origins = set(drawn.loc[drawn["source"] == model, "origin"])
                    assert all(f"/rep{seed % replicates}/" in o for o in origins), origins
                    want = max(n_train.values()) if target == "balance" else int(target)
                    for cls, counts in metrics["counts"].items():
                        assert counts["real"] == n_train[cls]
                        assert counts["total"] == max(want, n_train[cls])
                        assert counts["synthetic"] == counts["total"] - counts["real"]


def test_figures_and_provenance(tiny_study):
    results = _results(tiny_study)
    for name in ("confusion_matrices", "learning_curves", "samples", "cvae_latent_space"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 5000
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["config"]["config_name"] == "tiny-test"
    assert provenance["seeds"] == [0, 1]


def test_second_dry_run_has_nothing_to_do(tiny_study):
    assert _dry_run_jobs(tiny_study, tiny_study / "config.yaml") == {}


def test_changing_one_catvae_hyperparameter_reruns_only_catvae_jobs(tiny_study, tiny_config):
    changed = json.loads(json.dumps(tiny_config))
    changed["generators"]["catvae"]["lr"] = 0.002
    (tiny_study / "changed").mkdir(exist_ok=True)
    config_path = write_config(tiny_study / "changed", changed)
    jobs = _dry_run_jobs(tiny_study, config_path)
    folds, replicates = tiny_config["evaluation"]["folds"], tiny_config["generators"]["replicates"]
    n_catvae_arms = len(tiny_config["synthesis"]["targets"]) * len(tiny_config["seeds"]) * folds
    assert jobs.get("train_generator") == 2 * folds * replicates  # catvae, one per class, fold and replicate
    assert jobs.get("synthesise") == 2 * folds * replicates and jobs.get("evaluate_generator") == 2 * folds * replicates
    assert jobs.get("tstr") == folds * replicates
    assert jobs.get("train_classifier") == n_catvae_arms
    assert "extract" not in jobs and "split" not in jobs and "export_latents" not in jobs
    assert jobs.get("classification_table") == 1 and jobs.get("generator_quality_table") == 1


def test_paper_preset_dry_run_lists_the_full_study(tmp_path):
    """`snakemake -n --configfile config/paper.yaml` plans the paper's study once `dataset.root` is a folder."""
    from conftest import REPO

    for i in range(5):  # subject folders only: the pre-flight counts them against the preset's 5 folds
        (tmp_path / "BraTS2020" / f"BraTS20_Training_{i:03d}").mkdir(parents=True)
    jobs = _dry_run_jobs(tmp_path, REPO / "config" / "paper.yaml", "--config", "dataset={root: BraTS2020}")
    arms = 2 + 4 * 3 + 2 * 3  # none, weighted, 4 generators x 3 targets, 2 resampling baselines x 3 targets
    assert jobs["split"] == 5  # five folds
    assert jobs["train_classifier"] == arms * 3 * 5  # three seeds, five folds
    assert jobs["train_generator"] == 7 * 3 * 5  # (vae, catvae, ddpm per class, one cvae) x 3 replicates x 5 folds
    assert jobs["tstr"] == 4 * 3 * 5 and jobs["evaluate_generator"] == 4 * 2 * 3 * 5
    assert jobs["paper_protocol_table"] == 1 and jobs["protocol_inflation"] == 1
    # the reference's protocol apart: one table of every image, generators trained on all of it (vae, catvae, ddpm
    # per class, one cvae; no folds, no replicates), one classifier per arm and seed
    assert jobs["paper_protocol_split"] == 1 and jobs["train_paper_generator"] == 7
    assert jobs["synthesise_paper"] == 4 * 2 and jobs["paper_protocol_classifier"] == arms * 3
    plan = run_snakemake(tmp_path, REPO / "config" / "paper.yaml", "-n", "--config", "dataset={root: BraTS2020}")
    text = plan.stdout + plan.stderr
    for arm in ("catvae@balance", "catvae@1000", "catvae@2000", "vae@balance"):  # Table 7's 830 / 1000 / 2000
        assert f"classifier/paper_protocol/{arm}/seed0/metrics_paper_protocol.json" in text, arm
        assert f"classifier/fold0/{arm}/seed0/metrics.json" in text, arm
    assert "@437" not in text  # Table 6's target belongs to config/busi.yaml
    assert "generators/paper_protocol/catvae/Tumor/checkpoint.pt" in text
    # no held-out job reads a paper-protocol file, no paper-protocol job a held-out generator's
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", text)
    held_out = [b for b in blocks if re.match(r"(local)?rule (train_classifier|train_generator|synthesise|tstr):", b)]
    paper = [b for b in blocks if re.match(r"(local)?rule (paper_protocol_classifier|synthesise_paper):", b)]
    assert held_out and paper
    assert not [b for b in held_out if "paper_protocol" in b.split("output:")[0]]
    assert not [b for b in paper if "/fold" in b.split("output:")[0]]


# The rules that run a torch model on config `device`; they, and only they, ask for a GPU (README, "On a cluster").
GPU_RULES = {"train_generator", "synthesise", "evaluate_generator", "export_latents", "train_classifier", "tstr",
             "train_paper_generator", "synthesise_paper", "paper_protocol_classifier"}
SLURM_PROFILE = REPO / "profiles" / "slurm"
GPUNODE_PROFILE = SLURM_PROFILE.parent / "gpunode"


def _planned_resources(workdir: Path, config_path: Path, *args: str) -> dict[str, list[dict[str, str]]]:
    """Each rule's jobs in a dry run, as the `resources:` line Snakemake prints for the job (key -> value)."""
    proc = run_snakemake(workdir, config_path, "-n", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif rule and line.startswith("resources: "):
            plan.setdefault(rule, []).append(dict(item.split("=", 1) for item in line[11:].split(", ")))
            rule = None
    assert plan, proc.stdout[-2000:]
    return plan


def _gpu_requests(plan: dict[str, list[dict[str, str]]]) -> dict[str, set[int]]:
    return {rule: {int(job.get("gpu", 0)) for job in jobs} for rule, jobs in plan.items()}


@pytest.mark.parametrize("profile", ["none", "slurm", "gpunode"])
def test_dry_run_gpu_requests_follow_device_rule_by_rule(tmp_path, tiny_config, profile):
    """One GPU for each job of the model rules unless `device` is cpu, none for any other rule; the SLURM
    profile adds no GPU request of its own (it used to give training one even with `device: cpu`), nor does the
    one-node profile (its pool of 4 is shared by the jobs that ask for one)."""
    config_path = write_config(tmp_path, {**tiny_config, "classifier": {**tiny_config["classifier"],
                                                                        "paper_protocol": True}})
    profiles = {"slurm": SLURM_PROFILE, "gpunode": GPUNODE_PROFILE}
    extra = ("--profile", str(profiles[profile])) if profile in profiles else ()
    for device in ("cpu", "cuda", "auto"):
        requests = _gpu_requests(_planned_resources(tmp_path, config_path, "--config", f"device={device}", *extra))
        assert GPU_RULES <= set(requests), sorted(requests)  # every GPU rule is in the plan, so each was checked
        for rule, gpus in requests.items():
            wanted = 1 if rule in GPU_RULES and device != "cpu" else 0
            assert gpus == {wanted}, f"device {device}, profile {profile}: rule {rule} asks for {gpus} GPU(s)"


def test_dry_run_of_the_readme_partition_recipe_sends_exactly_the_gpu_jobs_to_the_gpu_partition(tmp_path, tiny_config):
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    recipes = re.findall(r"`(--set-resources [^`]*slurm_partition=gpu[^`]*)`", readme)
    assert len(recipes) == 1, recipes
    recipe = recipes[0]
    assert {item.split(":")[0] for item in recipe.split()[1:]} == GPU_RULES
    config_path = write_config(tmp_path, {**tiny_config, "device": "auto",
                                          "classifier": {**tiny_config["classifier"], "paper_protocol": True}})
    plan = _planned_resources(tmp_path, config_path, "--profile", str(SLURM_PROFILE), *recipe.split())
    for rule, jobs in plan.items():
        for job in jobs:
            if rule == "all":
                continue
            on_gpu_partition = job.get("slurm_partition") == "gpu"
            assert on_gpu_partition == (rule in GPU_RULES) == (job.get("gpu") == "1"), (rule, job)


def test_local_profile_runs_one_gpu_job_at_a_time():
    import yaml

    from conftest import REPO

    profile = yaml.safe_load((REPO / "profiles" / "local" / "config.yaml").read_text())
    assert profile["resources"] == {"gpu": 1}
    assert "set-resources" not in yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())


def test_gpunode_profile_runs_four_gpu_jobs_at_once_on_all_cores():
    """profiles/gpunode: a pool of 4 GPU jobs (with `catvae.gpu_slots`, 4 per GPU on a one-GPU node; their
    pinning and the per-GPU bound are tested in tests/test_gpu_slots.py) and every core for the CPU jobs."""
    import yaml

    profile = yaml.safe_load((GPUNODE_PROFILE / "config.yaml").read_text())
    assert profile["resources"] == {"gpu": 4} and profile["cores"] == "all"
    assert "set-resources" not in profile and "executor" not in profile


@pytest.mark.parametrize("config_file", ["config/config.yaml", ".test/config/config.yaml"])
def test_snakemake_lint_is_clean(tmp_path, config_file):
    """The demo and the test study lint clean (the catalog lints its `.test` config too)."""
    import subprocess

    from conftest import REPO, SNAKEMAKE

    cmd = [SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(REPO / config_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_snakefmt_check_is_clean():
    """The Snakemake catalog's formatter leaves every rule file as it is (CI fails on a file it would change)."""
    import subprocess

    from conftest import REPO

    snakefmt = Path(sys.executable).with_name("snakefmt")
    cmd = [str(snakefmt), "--check", "Snakefile", "workflow/rules"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_report_rule_is_a_local_rule():
    """Tables, figures and provenance take seconds: on a cluster they must not each become a job."""
    from conftest import REPO

    text = (REPO / "workflow" / "rules" / "report.smk").read_text()
    declared = re.search(r"^localrules:\n((?:    \w+,\n)+)", text, flags=re.M)
    assert declared, "report.smk declares no localrules"
    assert set(re.findall(r"\w+", declared.group(1))) == set(re.findall(r"^rule (\w+):", text, flags=re.M))


def test_classifier_seed_k_draws_from_generator_replicate_k_mod_n(tmp_path, tiny_config):
    """With n replicates, each its own training job, a generator arm's seed k reads replicate k mod n (dry run)."""
    config = {**tiny_config, "seeds": [0, 1, 2], "evaluation": {"folds": 1},
              "generators": {**tiny_config["generators"], "replicates": 2}}
    proc = run_snakemake(tmp_path, write_config(tmp_path, config), "-n")
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n)+)", proc.stdout + proc.stderr, flags=re.M)
    trained = {re.search(r"wildcards: (.*)", body).group(1) for rule, body in jobs if rule == "train_generator"}
    assert len(trained) == 2 * (2 + 1 + 2)  # catvae and ddpm per class (Tumor, NoTumor) + one cvae, x 2 replicates
    model = tiny_config["generators"]["models"][0]
    seen = {}
    for rule, body in jobs:
        if rule != "train_classifier":
            continue
        wildcards = dict(w.split("=") for w in re.search(r"wildcards: (.*)", body).group(1).split(", "))
        if wildcards["arm"].startswith(f"{model}@"):
            inputs = re.search(r"input: (.*)", body).group(1)
            seen[int(wildcards["seed"])] = set(re.findall(rf"synthetic/fold0/{model}/rep(\d+)/", inputs))
    assert seen == {0: {"0"}, 1: {"1"}, 2: {"0"}}
