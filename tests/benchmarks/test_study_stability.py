"""benchmarks/study_stability.py: how runs' findings are compared (asserted, reversed, changed),
on comparisons made up here, and one cheap study end to end at the tiny budget."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from cnnlab.analysis.statistics import compare

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "study_stability.py"


@pytest.fixture(scope="module")
def stability():
    spec = importlib.util.spec_from_file_location("study_stability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def apart(better, worse, gap=0.05, base=0.8):
    """A comparison told apart: `better` ahead of `worse` by `gap` on each of three seeds."""
    return compare(better, {s: base + gap + 0.01 * s for s in range(3)},
                   worse, {s: base + 0.01 * s + 0.001 * s * s for s in range(3)})


def level(a, b):
    """A comparison not told apart: the sign of the difference flips between seeds."""
    return compare(a, {0: 0.80, 1: 0.84, 2: 0.81}, b, {0: 0.82, 1: 0.80, 2: 0.80})


def test_made_up_comparisons_are_what_they_claim():
    assert apart("A", "B").told_apart and apart("A", "B").name_a == "A"
    assert apart("B", "A").name_a == "B"
    assert not level("A", "B").told_apart


def test_asserted_counts_told_apart_findings_once_each(stability):
    findings = [apart("relu", "sigmoid"), level("max", "avg"), apart("bn", "none"),
                apart("relu", "sigmoid")]  # the same comparison again (a ranking and a sentence)
    found = stability.asserted(findings)
    assert len(found) == 2
    assert {c.name_a for c in found.values()} == {"relu", "bn"}
    # pairs of the same names on other numbers (one per model) are two findings
    twice = stability.asserted([apart("recomputed", "as trained", 0.05),
                                apart("recomputed", "as trained", 0.08)])
    assert sorted(key[1] for key in twice) == [0, 1]


def test_the_same_findings_on_other_numbers_are_unchanged(stability):
    result = stability.compare_runs({
        "seeds 0-2": [apart("relu", "sigmoid", 0.05), level("max", "avg")],
        "seeds 3-5": [apart("relu", "sigmoid", 0.09), level("avg", "max")]})
    assert len(result.findings) == 1 and len(result.held) == 1
    assert not result.reversed and not result.differing and not result.changed


def test_a_reversal_is_detected(stability):
    result = stability.compare_runs({
        "seeds 0-2": [apart("flip", "none"), apart("crop", "none")],
        "seeds 3-5": [apart("none", "flip"), apart("crop", "none")]})
    assert len(result.reversed) == 1
    reversal = result.reversed[0]
    assert reversal["pair"] == ("flip", "none")
    assert reversal["winners"] == {"seeds 0-2": "flip", "seeds 3-5": "none"}
    assert result.changed and len(result.findings) == 3 and len(result.held) == 1
    line = stability.summary_line("quick", ["seeds 0-2", "seeds 3-5"], {"augmentation": result})
    assert line == ("stability (quick, seeds 0-2 vs 3-5): 1 study, 3 findings asserted (1 in "
                    "every run), 1 reversed, 1 study whose findings changed (augmentation)")


def test_a_changed_sentence_is_detected_and_said(stability):
    same = {"seeds 0-2": [apart("bn", "none")], "seeds 3-5": [apart("bn", "none")],
            "seeds 0-2 on AVX2": [apart("bn", "none")]}
    changed = {"seeds 0-2": [apart("nin 2", "nin 1"), level("nin 3", "nin 1")],
               "seeds 3-5": [level("nin 2", "nin 1"), level("nin 3", "nin 1")],
               "seeds 0-2 on AVX2": [apart("nin 2", "nin 1"), level("nin 1", "nin 3")]}
    results = {"bn-placement": stability.compare_runs(same),
               "nin-1x1": stability.compare_runs(changed)}
    assert not results["bn-placement"].changed
    nin = results["nin-1x1"]
    assert nin.changed and not nin.reversed
    assert nin.differing == [{"finding": "nin 2 better than nin 1",
                              "in": ["seeds 0-2", "seeds 0-2 on AVX2"], "not in": ["seeds 3-5"]}]
    line = stability.summary_line("quick", list(same), results, incomplete=["bn-lr"])
    assert line == ("stability (quick, seeds 0-2 vs 3-5 vs 0-2 on AVX2): 2 studies, 2 findings "
                    "asserted (1 in every run), 0 reversed, 1 study whose findings changed "
                    "(nin-1x1); 1 not complete in every run (bn-lr)")


def test_seed_sets_and_their_folders(stability):
    assert stability.parse_seed_sets("0,1,2 3-5") == [(0, 1, 2), (3, 4, 5)]
    assert [stability.Run(s).folder for s in [(0, 1, 2), (4,), (0, 2)]] == [
        "seeds-0-2", "seeds-4", "seeds-0,2"]
    assert stability.Run((0, 1, 2), avx2=True).label == "seeds 0-2 on AVX2"
    with pytest.raises(SystemExit, match="share a seed"):
        stability.parse_seed_sets("0,1 1,2")


def test_one_tiny_study_end_to_end_then_report_only(stability, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the training processes inherit it
    args = ["--studies", "lenet-modern", "--budget", "tiny", "--seed-sets", "0 1",
            "--root", str(tmp_path)]
    assert stability.main(args) == 0
    trained = capsys.readouterr().out
    line = ("stability (tiny, seeds 0 vs 1): 1 study, 0 findings asserted (0 in every run), "
            "0 reversed, 0 studies whose findings changed")
    assert line in trained.splitlines()
    assert trained.count("training seeds") == 2
    for run in ("seeds-0", "seeds-1"):
        assert (tmp_path / "tiny" / "lenet-modern" / run / "results.csv").is_file()
        assert float((tmp_path / "tiny" / "lenet-modern" / f"{run}.seconds").read_text()) > 0

    assert stability.main([*args, "--report-only"]) == 0
    reported = capsys.readouterr().out
    assert line in reported.splitlines() and "training seeds" not in reported
    assert "seeds 1: 4/4 trials" in reported
    record = json.loads((tmp_path / "tiny" / "stability.json").read_text())
    assert record["summary"] == line
    runs = record["studies"]["lenet-modern"]["runs"]
    assert [entry["trials"] for entry in runs.values()] == [4, 4]
    assert all(len(entry["findings"]) == 3 for entry in runs.values())  # three, none told apart
