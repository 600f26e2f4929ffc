"""`cnnlab demo edges` tells the chapter 7.2 story and learns the edge kernel."""

import re

from cnnlab.cli import main


def test_demo_edges_prints_the_story_and_learns_the_kernel(capsys):
    assert main(["demo", "edges"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert lines.count(["1", "1", "0", "0", "0", "0", "1", "1"]) == 6  # X
    assert lines.count(["0", "1", "0", "0", "0", "-1", "0"]) == 6  # its vertical edges
    assert lines.count(["0"] * 5) == 8  # the transposed image: no edges K can see
    steps = re.findall(r"step\s+(\d+), loss ([\d.]+)", out)
    assert [int(step) for step, _ in steps] == [2, 4, 6, 8, 10]
    assert float(steps[-1][1]) < 0.1
    kernel = [float(v) for v in re.search(r"learned kernel: \[(.*?)\]", out).group(1).split(",")]
    assert abs(kernel[0] - 1) < 0.05 and abs(kernel[1] + 1) < 0.05


def test_demo_rejects_an_unknown_story(capsys):
    try:
        main(["demo", "corners"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice" in capsys.readouterr().err
