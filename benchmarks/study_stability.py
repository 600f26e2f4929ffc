"""Do the studies' findings hold on other seeds (and held to AVX2)? Every study, run twice or more.

Each study that trains and compares runs at `--budget` (quick by default) once per seed set of
`--seed-sets` (disjoint sets: 0,1,2 and 3,4,5 by default), and with `--avx2` once more on the
first set with torch held to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``, which
must be set before torch is imported, so every run trains in a process of its own). A run's
findings are the comparisons its conclusion told apart ("A is better than B by ..."); they are
compared between the runs of each study:

- asserted: a finding (a pair and the one of it that is better) that at least one run states;
- reversed: a pair that one run states one way and another run the other way (the goal is 0);
- changed: a study whose runs do not state the same findings (one asserted, another not told
  apart, or reversed), listed with what differs.

Each run is its own study folder, ``ROOT/BUDGET/STUDY/seeds-0-2`` (``...-avx2``), beside its
training log (``seeds-0-2.log``) and the wall seconds spent training it (``seeds-0-2.seconds``,
summed over the invocations that trained it). A folder is an ordinary study folder: a run
stopped halfway resumes where it stopped when the script is run again, and a finished run is
not trained again. All studies on two seed sets at quick is hours of CPU, so run them in parts
(``--studies`` a few at a time, or stop it and start it again); `--report-only` trains nothing
and reports on every folder that exists. The report, per study: each run's trials, wall time,
training time and findings, the reversals and what changed; then one line, and
``ROOT/BUDGET/stability.json`` with it all.

    python benchmarks/study_stability.py                       # every study, seeds 0-2 and 3-5
    python benchmarks/study_stability.py --studies bn-lr nin-1x1 --avx2
    python benchmarks/study_stability.py --report-only         # what the folders hold so far
    python benchmarks/study_stability.py --studies lenet-modern --budget tiny --seed-sets "0 1"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.analysis.statistics import Comparison
from cnnlab.experiments.studies import BUDGETS, STUDIES, Study
from cnnlab.experiments.studies.records import RESULTS_FILE, StudyResults
from cnnlab.experiments.studies.runner import result_keys, trained_seconds
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT
from cnnlab.files import read_csv

AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
"""What holds torch to AVX2 (read when torch is imported)."""
RECORD = "stability.json"
Key = tuple[tuple[str, str], int]
"""A finding's pair (its two names, sorted) and, where a conclusion compares pairs of the same
names more than once, which occurrence it is."""


# --- comparing runs' findings (pure: tests call these on made-up Comparisons) ---------------------

def keyed(findings: Iterable[Comparison]) -> dict[Key, Comparison]:
    """A run's comparisons by pair. A comparison made twice (a ranking and a sentence that
    compare the same two variants on the same numbers) counts once; pairs of the same names
    on other numbers (one per model, say) are told apart by their order."""
    found: dict[Key, Comparison] = {}
    seen = set()
    for comparison in findings:
        d = comparison.difference
        same = (comparison.name_a, comparison.name_b, d.mean, d.values)
        if same in seen:
            continue
        seen.add(same)
        pair = tuple(sorted((comparison.name_a, comparison.name_b)))
        occurrence = sum(key[0] == pair for key in found)
        found[(pair, occurrence)] = comparison
    return found


def asserted(findings: Iterable[Comparison]) -> dict[Key, Comparison]:
    """The comparisons of a run that state a finding: those told apart, by pair."""
    return {key: c for key, c in keyed(findings).items() if c.told_apart}


def statement(key: Key, comparison: Comparison) -> str:
    """A finding in words, without its numbers: ``A better than B``."""
    return f"{comparison.name_a} better than {comparison.name_b}" + (
        f" (#{key[1] + 1})" if key[1] else "")


@dataclass
class Stability:
    """How one study's runs agree: what each asserts, the pairs reversed, the findings that
    not every run states."""

    asserted: dict[str, dict[Key, Comparison]]
    """Each run's (by its label) asserted findings."""
    reversed: list[dict] = field(default_factory=list)
    """Each reversed pair: ``{"pair": (a, b), "winners": {run: name}}``."""
    differing: list[dict] = field(default_factory=list)
    """Each finding some runs state and others not: ``{"finding", "in", "not in"}``."""

    @property
    def findings(self) -> set[tuple[Key, str]]:
        """Every finding asserted by at least one run: its pair and the better of the two."""
        return {(key, c.name_a) for found in self.asserted.values() for key, c in found.items()}

    @property
    def held(self) -> set[tuple[Key, str]]:
        """The findings every run asserts."""
        runs = [{(key, c.name_a) for key, c in found.items()} for found in self.asserted.values()]
        return set.intersection(*runs) if runs else set()

    @property
    def changed(self) -> bool:
        """Whether the runs' conclusions state different findings."""
        return self.findings != self.held


def compare_runs(findings: Mapping[str, Iterable[Comparison]]) -> Stability:
    """Compare the findings of one study's runs (`findings` by run label)."""
    found = {label: asserted(run) for label, run in findings.items()}
    stability = Stability(found)
    labels = list(found)
    for key in dict.fromkeys(key for run in found.values() for key in run):
        winners = {label: found[label][key].name_a for label in labels if key in found[label]}
        if len(set(winners.values())) > 1:
            stability.reversed.append({"pair": key[0], "occurrence": key[1], "winners": winners})
        for winner in dict.fromkeys(winners.values()):
            states = [label for label in labels if winners.get(label) == winner]
            if len(states) < len(labels):
                example = next(found[label][key] for label in states)
                stability.differing.append({"finding": statement(key, example), "in": states,
                                            "not in": [x for x in labels if x not in states]})
    return stability


def summary_line(budget: str, labels: list[str], stabilities: Mapping[str, Stability],
                 incomplete: list[str] = ()) -> str:
    """The one line: studies compared, findings asserted (and held by every run), reversed,
    and the studies whose findings changed; studies not complete in every run, if any."""
    runs = " vs ".join([labels[0], *(label.removeprefix("seeds ") for label in labels[1:])])
    findings = sum(len(s.findings) for s in stabilities.values())
    held = sum(len(s.held) for s in stabilities.values())
    reversed_ = sum(len(s.reversed) for s in stabilities.values())
    changed = [name for name, s in stabilities.items() if s.changed]
    count = len(stabilities)
    line = (f"stability ({budget}, {runs}): {count} stud{'y' if count == 1 else 'ies'}, "
            f"{findings} finding{'' if findings == 1 else 's'} asserted ({held} in every run), "
            f"{reversed_} reversed, {len(changed)} stud{'y' if len(changed) == 1 else 'ies'} "
            f"whose findings changed" + (f" ({', '.join(changed)})" if changed else ""))
    if incomplete:
        line += (f"; {len(incomplete)} not complete in every run "
                 f"({', '.join(incomplete)})")
    return line


# --- runs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One run of every study: a seed set, held to AVX2 or not."""

    seeds: tuple[int, ...]
    avx2: bool = False

    @property
    def label(self) -> str:
        return f"seeds {seed_text(self.seeds)}" + (" on AVX2" if self.avx2 else "")

    @property
    def folder(self) -> str:
        return f"seeds-{seed_text(self.seeds)}" + ("-avx2" if self.avx2 else "")

    def environment(self) -> dict:
        env = dict(os.environ)
        if self.avx2:
            env.update(AVX2_ENV)
        return env


def seed_text(seeds: tuple[int, ...]) -> str:
    """``0-2`` for a range of consecutive seeds, else ``0,2,5`` (a single seed: ``4``)."""
    if len(seeds) > 1 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def parse_seed_sets(text: str) -> list[tuple[int, ...]]:
    """``"0,1,2 3,4,5"`` (or ``"0-2 3-5"``): the seed sets, which must not share a seed."""
    sets = []
    for part in text.split():
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-"))
                seeds = tuple(range(low, high + 1))
            else:
                seeds = tuple(int(x) for x in part.split(","))
        except ValueError:
            raise SystemExit(f"--seed-sets: {part!r} is not a seed list such as 0,1,2 or 0-2")\
                from None
        if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
            raise SystemExit(f"--seed-sets: {part!r}: list each seed once, each 0 or more")
        sets.append(seeds)
    if not sets:
        raise SystemExit("--seed-sets: give at least one seed set")
    used = [seed for seeds in sets for seed in seeds]
    if len(set(used)) != len(used):
        raise SystemExit(f"--seed-sets {text!r}: the sets share a seed; give disjoint sets")
    return sets


def expected_trials(study: Study, budget: str, seeds: tuple[int, ...]) -> int:
    """How many trials a complete run of `study` at `budget` with `seeds` holds."""
    plan = study.plan(budget, seeds)
    return len(plan.specs) * math.prod(len(values) for values in plan.grid.values()) \
        * len(plan.seeds)


def read_rows(folder: Path) -> int | None:
    """How many trials the folder's ``results.csv`` holds (None: there is none yet)."""
    if not (folder / RESULTS_FILE).is_file():
        return None
    return len(read_csv(folder / RESULTS_FILE))


def wall_file(folder: Path) -> Path:
    """Where a run's wall seconds are kept, summed over the invocations that trained it."""
    return folder.with_name(folder.name + ".seconds")


def read_wall(folder: Path) -> float | None:
    return float(wall_file(folder).read_text()) if wall_file(folder).is_file() else None


def train(study: Study, budget: str, run: Run, folder: Path, workers: int) -> tuple[float, int]:
    """Train (or resume) one run in a process of its own, its output appended to the log
    beside its folder, and add its wall seconds to the run's (interrupted too); the seconds it
    took and its exit code."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = folder.with_name(folder.name + ".log")
    before = read_wall(folder) or 0.0
    started = time.perf_counter()
    try:
        with open(log, "a") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}: {study.name} {budget} "
                      f"{run.label}\n")
            out.flush()
            seeds = ",".join(map(str, run.seeds)) + ","  # a list, even of one seed
            code = subprocess.run([sys.executable, "-m", "cnnlab", "study", "run", study.name,
                                   "--budget", budget, "--seeds", seeds, "--out", str(folder),
                                   "--workers", str(workers)],
                                  env=run.environment(), stdout=out, stderr=subprocess.STDOUT,
                                  check=False).returncode
    finally:
        seconds = time.perf_counter() - started
        wall_file(folder).write_text(f"{before + seconds:.1f}\n")
    return seconds, code


def conclude(study: Study, budget: str, run: Run, folder: Path) -> tuple[str, list[Comparison],
                                                                          float]:
    """The run's conclusion and findings recomputed from its folder, and its training seconds."""
    plan = study.plan(budget, run.seeds)
    results = StudyResults.read(folder, budget, result_keys(plan), study.names)
    conclusion = study.conclude(results)
    return conclusion, list(results.findings), trained_seconds(results.rows)


def finding_record(comparison: Comparison) -> dict:
    d = comparison.difference
    return {"better": comparison.name_a, "worse": comparison.name_b, "difference": d.mean,
            "low": None if math.isnan(d.low) else d.low,
            "high": None if math.isnan(d.high) else d.high, "n": d.n,
            "told_apart": comparison.told_apart, "sentence": comparison.sentence}


def study_names(names: list[str] | None) -> list[str]:
    """The studies asked for, or every study that trains (those that only measure compare
    nothing)."""
    if not names:
        return [name for name, study in STUDIES.items() if study.trains]
    unknown = [name for name in names if name not in STUDIES]
    if unknown:
        raise SystemExit(f"unknown studies: {', '.join(unknown)}; known: {', '.join(STUDIES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", metavar="NAME",
                        help="studies to run (default: every study that trains)")
    parser.add_argument("--budget", choices=BUDGETS, default="quick")
    parser.add_argument("--seed-sets", default="0,1,2 3,4,5",
                        help='disjoint seed sets, one run each (default "0,1,2 3,4,5")')
    parser.add_argument("--avx2", action="store_true",
                        help="one more run of the first seed set with torch held to AVX2")
    parser.add_argument("--root", type=Path, default=SWEEPS_ROOT / "stability",
                        help="where the runs' folders go (default runs/stability)")
    parser.add_argument("--workers", type=int, default=1, help="trials at once in each run")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report on the folders that exist")
    args = parser.parse_args(argv)
    sets = parse_seed_sets(args.seed_sets)
    runs = [Run(seeds) for seeds in sets] + ([Run(sets[0], avx2=True)] if args.avx2 else [])
    base = args.root / args.budget
    record_file = base / RECORD
    record = {"budget": args.budget, "root": str(base), "runs": [
        {"label": run.label, "seeds": list(run.seeds), "avx2": run.avx2} for run in runs],
        "studies": {}}
    stabilities: dict[str, Stability] = {}
    incomplete, failed = [], []
    for name in study_names(args.studies):
        study = STUDIES[name]
        print(f"{name} ({args.budget})", flush=True)
        findings, entries = {}, {}
        for run in runs:
            folder = base / name / run.folder
            expected = expected_trials(study, args.budget, run.seeds)
            wall = read_wall(folder)
            rows = read_rows(folder)
            if not args.report_only and rows != expected:
                print(f"  training {run.label} (log: {folder}.log)", flush=True)
                seconds, code = train(study, args.budget, run, folder, args.workers)
                wall = read_wall(folder)
                if code != 0:
                    failed.append(f"{name} {run.label}")
                    print(f"  {run.label}: training failed (exit {code}) after {seconds:,.0f} s;"
                          f" see {folder}.log", flush=True)
                rows = read_rows(folder)
            entry = {"folder": str(folder), "trials": rows or 0, "expected": expected,
                     "wall_s": wall}
            entries[run.label] = entry
            if rows is None:
                print(f"  {run.label}: " + ("started, not finished (run again to resume)"
                                            if folder.is_dir() else "not run yet"))
                continue
            conclusion, found, trained = conclude(study, args.budget, run, folder)
            claims = asserted(found)
            entry.update(trained_s=trained, conclusion=conclusion,
                         findings=[finding_record(c) for c in keyed(found).values()],
                         asserted=[c.sentence for c in claims.values()])
            wall_text = "wall time not recorded" if wall is None else f"{wall:,.0f} s wall"
            print(f"  {run.label}: {rows}/{expected} trials, {wall_text} ({trained:,.0f} s "
                  f"training), {len(claims)} finding{'' if len(claims) == 1 else 's'} asserted")
            for comparison in claims.values():
                print(f"    {comparison.sentence}")
            if rows == expected:
                findings[run.label] = found
        study_record = {"runs": entries}
        if len(findings) == len(runs):
            stability = stabilities[name] = compare_runs(findings)
            study_record.update(reversed=stability.reversed, differing=stability.differing,
                                changed=stability.changed, asserted=len(stability.findings),
                                held=len(stability.held))
            for pair in stability.reversed:
                print(f"  reversed: {pair['pair'][0]} vs {pair['pair'][1]}: " + "; ".join(
                    f"{label} says {winner} is better"
                    for label, winner in pair["winners"].items()))
            if not stability.changed:
                print("  findings: the same in every run")
            for item in stability.differing:
                print(f"  changed: {item['finding']}: in {', '.join(item['in'])}, "
                      f"not in {', '.join(item['not in'])}")
        else:
            incomplete.append(name)
            print("  not compared: not every run is complete")
        record["studies"][name] = study_record
    line = summary_line(args.budget, [run.label for run in runs], stabilities, incomplete)
    record["summary"] = line
    print(line)
    base.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2) + "\n")
    print(f"record: {record_file}")
    if failed:
        print(f"failed: {'; '.join(failed)} (run again to resume)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
