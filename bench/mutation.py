"""Mutation testing of the scientific core: do the unit tests notice a small, plausible bug in the code that decides
the study's numbers?

Why: a large suite can still let a one-line bug through where no fixture reaches it (score ties, fold counts that
divide evenly, an interval's level). This applies mutmut's one-token mutations (``<`` for ``<=``, ``+ 1`` for
``- 1``, a changed constant or keyword argument...) to the functions listed in :data:`CORE` only, runs for each
mutant the unit tests of :data:`TESTS` that reach the mutated function (mutmut's per-function test map), and prints
the mutants, killed, survived and timed out, the score, and each survivor with its file:line and its change.

Score = (killed + timed out) / (mutants - equivalent): a timeout is a mutant the tests noticed (an endless loop).
A survivor listed in ``bench/mutation_equivalent.txt`` (with the reason it changes no behaviour) is an equivalent
mutant and counted apart; an entry that no longer matches a survivor is reported as stale.

Not in CI (it is slow): the work is done in a scratch copy of the repository, so the checkout is left as it was.

    python bench/mutation.py                  # installs mutmut (the `mutation` extra's pin) if it is missing
    python bench/mutation.py --jobs 2 --fail-under 95 --keep /tmp/mutation   # keep the scratch copy to inspect
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = REPO / "bench" / "mutation_equivalent.txt"

#: The functions that decide the study's numbers, per module ("Class.method" for methods). Whole modules would
#: spend most of the run on log messages and file plumbing that no result depends on.
CORE: dict[str, list[str]] = {
    # bootstrap, its intervals and p-values, Holm, the metrics each replicate recomputes
    "catvae/report/statistics.py": [
        "Interval.contains", "holm", "bootstrap_p_value", "balanced_accuracy_from_confusion",
        "macro_f1_from_confusion", "_pair_counts", "_clusters", "_draw_subjects", "_members", "_multiplicities",
        "_coded_predictions", "_point_metrics", "_run_statistics", "_fold_metric", "_run_weights",
        "SubjectBootstrap._arm_statistics", "SubjectBootstrap.replicates", "SubjectBootstrap.compare",
        "SubjectBootstrap._interval",
    ],
    # subject-level split and cross-validation folds
    "catvae/data/split.py": [
        "split_manifest", "fold_split", "_units", "_assign", "_deal_folds", "_with_partition", "_share_bins",
        "_apportion", "_stratified_assign", "_cover_classes",
    ],
    # epoch selection and what the metrics files record about it
    "catvae/classifier/train.py": ["select_epoch", "selection_record", "arm_class_weights"],
    # the reference's protocol: its 80/20 rule (its pools are build_training_set's, below)
    "catvae/classifier/paper_protocol.py": ["keras_validation_split"],
    # synthetic deficits: how many images an arm or TSTR adds, and which
    "catvae/generators/synthesis.py": ["targets_for", "resolve_target", "tstr_count"],
    "catvae/classifier/arms.py": ["parse_arm", "build_training_set", "_resample", "synthetic_rows"],
    # the arm names every stage reads (which method, which target, which generator, which reference)
    "catvae/vocabulary/arms.py": ["Arm.parse", "Arm.split", "arm_generator", "reference_arm", "study_arms"],
    # the leakage guard
    "catvae/classifier/evaluate.py": ["check_no_leakage"],
    # TSTR: what it trains on (run_tstr around it trains, predicts and writes, through the functions above)
    "catvae/classifier/tstr.py": ["training_table"],
}

#: The fast unit tests that cover CORE: whole files, and of the files that also train models (classifier, TSTR,
#: generators) only the tests that train nothing. A mutant is run against the listed tests that reach its function.
TESTS: list[str] = [
    "tests/report/test_statistics.py", "tests/report/test_statistics_properties.py", "tests/data/test_split.py",
    "tests/classifier/test_arms.py", "tests/vocabulary/test_arms.py",
    *(f"tests/classifier/test_train.py::{t}" for t in (
        "test_leakage_guard_rejects_a_test_subject_seen_in_training",
        "test_leakage_guard_rejects_a_synthetic_image_in_the_test_set",
        "test_leakage_guard_compares_subjects_images_and_every_synthetic_manifest",
        "test_missing_option_names_the_config_key", "test_bad_selection_options_name_the_key",
        "test_select_epoch_prefers_balanced_accuracy_then_lower_loss_then_earlier",
        "test_select_epoch_breaks_ties_by_loss_then_epoch_whatever_the_row_order",
        "test_only_the_weighted_arm_weighs_its_loss_by_its_own_training_labels")),
    *(f"tests/classifier/test_paper_protocol.py::{t}" for t in (
        "test_keras_split_is_the_last_fifth_of_a_seeded_shuffle",
        "test_keras_validation_split_scores_the_floor_of_the_fraction",
        "test_keras_validation_split_refuses_an_empty_side")),
    *(f"tests/generators/test_synthesis.py::{t}" for t in (
        "test_targets_for", "test_resolve_target_accepts_counts_and_balance",
        "test_resolve_target_refuses_what_is_not_a_count",
        "test_tstr_count_is_the_largest_resolved_target_or_the_given_count")),
    *(f"tests/classifier/test_tstr.py::{t}" for t in (
        "test_tstr_refuses_an_unknown_epoch_rule", "test_tstr_refuses_too_few_or_missing_synthetic_images",
        "test_training_table_is_the_manifests_prefix_sized_from_the_real_training_split")),
]

#: What the tests need besides the package and the test files (the tiny study config of tests/conftest.py).
ALSO_COPY = [".test", "config", "pyproject.toml"]

KILLED, SURVIVED, TIMEOUT = "killed", "survived", "timeout"

#: Survivors that only change the text or arguments of a progress message (``log.info`` / ``log.debug``) are
#: counted apart: no result, file or error depends on them. Warnings are not exempt (they tell a user a class is
#: missing from a partition), nor are errors.
PROGRESS_LOG = {"info", "debug"}


@dataclass
class Mutant:
    name: str  # mutmut's key, e.g. catvae.data.split.x__apportion__mutmut_12
    path: str  # repository-relative source file
    function: str  # "name" or "Class.method"
    status: str
    line: int = 0  # line of the source file the mutation changes
    progress_log: bool = False  # the change lies inside a log.info / log.debug call
    before: str = ""  # the changed line(s), as in the source
    after: str = ""  # the same line(s) in the mutant

    def key(self) -> tuple[str, str, str, str]:
        return self.path, self.function, self.before, self.after


def ensure_mutmut() -> None:
    """Install the mutmut that pyproject.toml's `mutation` extra pins into this interpreter when it is absent or
    another version."""
    pin = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["mutation"][0]
    wanted = pin.split("==")[1]
    try:
        if importlib.metadata.version("mutmut") == wanted:
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    print(f"installing {pin} into {sys.prefix}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pin], check=True)


def mangled(path: str, function: str) -> str:
    """mutmut's name prefix of `function`'s mutants (``x_name`` for a function, ``xǁClassǁmethod`` for a method)."""
    module = path.removesuffix(".py").replace("/", ".")
    if "." in function:
        cls, method = function.split(".")
        return f"{module}.x\u01c1{cls}\u01c1{method}"
    return f"{module}.x_{function}"


def mutmut_config() -> str:
    """The [tool.mutmut] table: mutate only CORE's modules, test with TESTS, one process per mutant."""
    lines = [
        "",
        "[tool.mutmut]",
        'source_paths = ["catvae"]',
        f"only_mutate = {json.dumps(sorted(CORE))}",
        f"pytest_add_cli_args_test_selection = {json.dumps(TESTS)}",
        'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-m", "not workflow and not cluster"]',
        f"also_copy = {json.dumps(ALSO_COPY[:-1])}",
    ]
    return "\n".join(lines) + "\n"


def scratch_copy(work: Path) -> None:
    """The package, the tests and what they read, copied to `work` with the mutmut table added to pyproject.toml."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ["catvae", "tests", *ALSO_COPY]:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=ignore)
        else:
            shutil.copy2(src, work / name)
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + mutmut_config())


def run_mutmut(work: Path, jobs: int, log_path: Path) -> float:
    """`mutmut run` on CORE's functions in `work`; its output goes to `log_path`. Returns the wall time in s."""
    patterns = [f"{mangled(path, f)}__mutmut_*" for path, functions in CORE.items() for f in functions]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the mutated copy must be what is imported
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *patterns],
                              cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").replace("\r", "\n").splitlines()[-40:]
        sys.exit(f"mutmut run failed (exit {proc.returncode}); its log is {log_path}:\n" + "\n".join(tail))
    return seconds


def function_spans(source: str) -> dict[str, tuple[int, int]]:
    """First and last line of each function ("Class.method" for methods), decorators included."""
    out = {}

    def span(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
        return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno or node.lineno

    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = span(node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{item.name}"] = span(item)
    return out


def progress_log_lines(source: str) -> set[int]:
    """Lines of the ``log.info(...)`` / ``log.debug(...)`` calls of a module."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PROGRESS_LOG
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "log"):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def locate(mutant: Mutant, work: Path, source_lines: list[str], span: tuple[int, int]) -> None:
    """Fill in the mutant's source line and its before / after text from mutmut's own diff of the function."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(work)  # mutmut reads its files relative to the working directory
    try:
        diff = get_diff_for_mutant(mutant.name, path=mutant.path).splitlines()
    finally:
        os.chdir(cwd)
    hunks = [i for i, line in enumerate(diff) if line.startswith("@@")]
    if not hunks:
        return
    old_start = int(re.match(r"@@ -(\d+)", diff[hunks[0]]).group(1))
    removed, added, offset, first = [], [], 0, None
    for line in diff[hunks[0] + 1:]:
        if line.startswith("-"):
            removed.append(line[1:].strip())
            first = offset if first is None else first
            offset += 1
        elif line.startswith("+"):
            added.append(line[1:].strip())
        else:
            offset += 1
    mutant.before, mutant.after = " \u23ce ".join(removed), " \u23ce ".join(added)
    # The diff numbers the lines of the function's own code; find the changed line in the file's copy of the
    # function, nearest to where the diff puts it when the same text occurs twice.
    guess = span[0] + old_start - 1 + (first or 0)
    hits = [n for n in range(span[0], span[1] + 1) if removed and source_lines[n - 1].strip() == removed[0]]
    mutant.line = min(hits, key=lambda n: abs(n - guess)) if hits else guess


def collect(work: Path) -> list[Mutant]:
    """Every mutant of CORE's functions with its status (mutmut's exit-code table), survivors located."""
    from mutmut.stats import status_by_exit_code

    mutants = []
    for path, functions in CORE.items():
        meta = json.loads((work / "mutants" / f"{path}.meta").read_text())
        source = (work / path).read_text()
        spans, source_lines, logs = function_spans(source), source.splitlines(), progress_log_lines(source)
        for function in functions:
            if function not in spans:
                sys.exit(f"bench/mutation.py: {path} has no function {function} (CORE is out of date)")
            prefix = mangled(path, function) + "__mutmut_"
            for name, code in sorted(meta["exit_code_by_key"].items()):
                if not name.startswith(prefix):
                    continue
                status = status_by_exit_code[code]
                status = {"killed": KILLED, "survived": SURVIVED, "timeout": TIMEOUT}.get(status, status)
                mutant = Mutant(name, path, function, status)
                if status != KILLED:
                    locate(mutant, work, source_lines, spans[function])
                    mutant.progress_log = mutant.line in logs
                mutants.append(mutant)
    return mutants


def read_equivalents(path: Path) -> dict[tuple[str, str, str, str], str]:
    """Equivalent mutants: blocks of ``path | function``, ``- before``, ``+ after``, ``reason: ...`` lines.

    Keyed by the change itself (not mutmut's mutant number, which moves when the function is edited)."""
    if not path.is_file():
        return {}
    out: dict[tuple[str, str, str, str], str] = {}
    block: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines() + [""], 1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            if block:
                missing = {"where", "-", "+", "reason"} - set(block)
                if missing:
                    sys.exit(f"{path}:{number}: entry lacks {sorted(missing)}")
                where_path, _, function = block["where"].partition(" | ")
                out[(where_path.strip(), function.strip(), block["-"], block["+"])] = block["reason"]
                block = {}
            continue
        if line.startswith("- ") or line.startswith("+ "):
            block[line[0]] = line[2:].strip()
        elif line.startswith("reason:"):
            block["reason"] = line.removeprefix("reason:").strip()
        else:
            block["where"] = line
    return out


def report(mutants: list[Mutant], equivalents: dict, seconds: float, jobs: int) -> float:
    """Print the figures and each survivor; return the score in percent."""
    counts: dict[str, int] = {}
    for m in mutants:
        counts[m.status] = counts.get(m.status, 0) + 1
    not_killed = [m for m in mutants if m.status not in (KILLED, TIMEOUT)]
    logged = [m for m in not_killed if m.progress_log]
    equivalent = [m for m in not_killed if not m.progress_log and m.key() in equivalents]
    apart = {id(m) for m in logged + equivalent}
    live = [m for m in not_killed if id(m) not in apart]
    judged = [m for m in mutants if id(m) not in apart]
    detected = len(judged) - len(live)
    score = 100.0 * detected / len(judged) if judged else float("nan")

    print(f"\nmutation testing of {sum(map(len, CORE.values()))} functions in {len(CORE)} modules; "
          f"{len(TESTS)} test files and tests ({', '.join(sorted({t.split('::')[0] for t in TESTS}))})")
    print(f"wall time {seconds / 60:.1f} min, {jobs} worker(s)")
    print(f"mutants      {len(mutants)}")
    for status in (KILLED, TIMEOUT, SURVIVED, *sorted(set(counts) - {KILLED, TIMEOUT, SURVIVED})):
        note = "" if status in (KILLED, TIMEOUT, SURVIVED) else "  (counted as survivors)"
        print(f"{'timed out' if status == TIMEOUT else status:<12} {counts.get(status, 0)}{note}")
    print(f"  of the survivors, counted apart: {len(equivalent)} equivalent "
          f"({EQUIVALENT_FILE.relative_to(REPO)}), {len(logged)} in progress-log text (log.info / log.debug)")
    print(f"score        {score:.1f}% = (killed + timed out) / (mutants - counted apart) = {detected}/{len(judged)}")
    per_module: dict[str, list[int]] = {}
    for m in judged:
        tally = per_module.setdefault(m.path, [0, 0])
        tally[0] += 1
        tally[1] += m.status in (KILLED, TIMEOUT)
    for path, (total, hit) in per_module.items():
        print(f"    {path:<34} {hit}/{total} = {100 * hit / total:.1f}%")

    def show(group: list[Mutant], title: str, reason: bool = False) -> None:
        if group:
            print(f"\n{title} ({len(group)}):")
        for m in sorted(group, key=lambda m: (m.path, m.line, m.name)):
            print(f"  {m.path}:{m.line}  {m.function}  [{m.status}]  {m.name}\n      - {m.before}\n      + {m.after}")
            if reason:
                print(f"      equivalent: {equivalents[m.key()]}")

    show(live, "survivors")
    show(equivalent, "equivalent survivors", reason=True)
    mutated = {(path, f) for path, functions in CORE.items() for f in functions}  # --only leaves others unrun
    stale = {k for k in equivalents if k[:2] in mutated} - {m.key() for m in equivalent}
    for path, function, before, after in sorted(stale):
        print(f"\nstale entry in {EQUIVALENT_FILE.name} (no such survivor now): {path} | {function}\n"
              f"      - {before}\n      + {after}")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--keep", type=Path, help="do the work in this (new) folder and keep it")
    parser.add_argument("--fail-under", type=float, help="exit 1 when the score (percent) is below this")
    parser.add_argument("--only", nargs="+", metavar="FUNCTION",
                        help="mutate only these functions of CORE (names as in CORE, e.g. holm _draw_subjects)")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only) - {f for functions in CORE.values() for f in functions}
        if unknown:
            parser.error(f"--only: not in CORE: {sorted(unknown)}")
        for path in list(CORE):
            CORE[path] = [f for f in CORE[path] if f in args.only]
            if not CORE[path]:
                del CORE[path]

    for path, functions in CORE.items():  # before the slow part: a renamed function must not go unnoticed
        missing = sorted(set(functions) - set(function_spans((REPO / path).read_text())))
        if missing:
            sys.exit(f"bench/mutation.py: {path} has no function(s) {missing}: update CORE")
    ensure_mutmut()
    if args.keep:
        args.keep.mkdir(parents=True)
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="catvae-mutation-"))
    try:
        scratch_copy(work)
        print(f"mutating {sum(map(len, CORE.values()))} functions in {work} ({args.jobs} worker(s)); "
              f"log: {work / 'mutmut.log'}", flush=True)
        seconds = run_mutmut(work, args.jobs, work / "mutmut.log")
        score = report(collect(work), read_equivalents(EQUIVALENT_FILE), seconds, args.jobs)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if args.fail_under is not None and not score >= args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
