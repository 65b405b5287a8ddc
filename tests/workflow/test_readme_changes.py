"""README "Changing one thing": every command that section shows runs on a finished tiny study and shows what the
text says it shows.

The commands are read from the README, so the test follows the text: a command added there is run here. The study is
the smallest that has everything the section names (one CAT-VAE per class, one target, one seed, no baselines) and is
called `phantom`, so the README's paths work as written. Commands that only look run as written; `--cores N` runs the
change for real; the forcing commands (`-R`, `--until`, `-f`) run as dry runs, so the study stays finished and short.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from catvae.config import deep_update
from conftest import REPO, TINY_CONFIG, job_counts, run_snakemake, write_config

pytestmark = pytest.mark.workflow

SMALL_STUDY = deep_update(
    TINY_CONFIG,
    {
        "dataset": {"name": "phantom"},
        "seeds": [0],
        "evaluation": {"folds": 1},
        "generators": {"models": ["catvae"], "replicates": 1},
        "synthesis": {"targets": ["balance"]},
        "classifier": {"baselines": []},
    },
)
LOOKING = {"-n", "--dry-run", "--dryrun", "--summary", "-S", "--detailed-summary", "-D", "--list-changes", "--lc"}


def readme_section(title: str = "Changing one thing") -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def section_commands(section: str) -> list[list[str]]:
    """Every `snakemake` command in the section's code blocks, in order, comments dropped."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "snakemake":
                commands.append(words[1:])
    return commands


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("changes")
    config = write_config(workdir, SMALL_STUDY)
    proc = run_snakemake(workdir, config)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert job_counts(_run(workdir, config, ["-n", "--quiet", "rules"])) == {}
    return workdir, config


def _run(workdir: Path, config: Path, args: list[str]) -> str:
    proc = run_snakemake(workdir, config, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake {shlex.join(args)}\n{output[-4000:]}"
    return output


def _as_run_here(args: list[str]) -> list[str]:
    """The README's `--cores N` becomes 2 (conftest passes 2 as well); forcing commands get `-n`."""
    args = ["2" if prev == "--cores" and word == "N" else word for prev, word in zip([""] + args, args)]
    if not LOOKING & set(args) and {"-R", "--forcerun", "--until", "-f", "--force"} & set(args):
        args.append("-n")
    return args


def test_every_command_in_changing_one_thing_runs_and_shows_what_the_text_says(finished_study):
    workdir, config = finished_study
    section = readme_section()
    inline = [span for span in re.findall(r"`([^`\n]+)`", section) if span.startswith("snakemake ")]
    assert not inline, f"commands outside the code blocks are not tested: {inline}"
    commands = section_commands(section)
    seen = set()
    for readme_args in commands:
        args = _as_run_here(readme_args)
        output = _run(workdir, config, args)
        jobs = job_counts(output)
        change = "--config" in args and args[args.index("--config") + 1]
        if change and "--quiet" in args:
            seen.add("counts")
            assert jobs["train_generator"] == 2 and jobs["train_classifier"] == 1  # catvae per class, the catvae arm
            assert not {"phantom", "extract", "split"} & set(jobs)
        elif change and "-n" in args:
            seen.add("reasons")
            params_changed = re.findall(r"reason: Params have changed since last execution: .*", output)
            assert len(params_changed) == 2  # the two catvae trainings; the jobs after them name their inputs
            assert all("'lr': 0.001" in r and "'lr': 0.0005" in r for r in params_changed)
            assert "reason: Input files updated by another job" in output
        elif change and "--summary" in args:
            seen.add("summary")
            rows = {line.split("\t")[0]: line.split("\t") for line in output.splitlines() if "\t" in line}
            checkpoint = rows["results/phantom/generators/fold0/catvae/rep0/Tumor/checkpoint.pt"]
            assert checkpoint[-2:] == ["params changed", "update pending"]
            assert rows["results/phantom/classifier/fold0/catvae@balance/seed0/metrics.json"][-1] == "update pending"
            assert rows["results/phantom/data/fold0/split.csv"][-2:] == ["ok", "no update"]
        elif change and "--cores" in args:
            seen.add("run")
            assert jobs["train_generator"] == 2
            # Done with the change: nothing left with it, the same jobs again without it (the README's caveat).
            assert job_counts(_run(workdir, config, ["-n", "--quiet", "rules", "--config", change])) == {}
            assert job_counts(_run(workdir, config, ["-n", "--quiet", "rules"]))["train_generator"] == 2
        elif "-R" in args:
            seen.add("forcerun")
            assert jobs["train_generator"] == 2 and "extract" not in jobs
        elif "--until" in args:
            seen.add("until")
            assert "train_classifier" not in jobs and "classification_table" not in jobs
        elif "-f" in args:
            seen.add("one file")
            assert jobs == {"train_generator": 1}
        elif "--list-changes" in args:
            seen.add("code")
            # no script changed since the study ran: no output file is listed (the pre-flight summary names results/)
            assert not [line for line in output.splitlines() if line.startswith("results/")]
    assert seen == {"counts", "reasons", "summary", "run", "forcerun", "until", "one file", "code"}, commands


def test_list_changes_params_lists_unchanged_outputs_as_the_readme_warns(finished_study):
    """Snakemake 9.27.1 lists an output of every job with params even when nothing changed; if this fails after an
    upgrade, the README can recommend `--list-changes params` again."""
    workdir, config = finished_study
    assert "`--list-changes params`" in readme_section()
    output = _run(workdir, config, ["--list-changes", "params"])
    assert "results/phantom/data/fold0/split.csv" in output
