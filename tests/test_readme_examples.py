"""README examples that cannot drift: every command example whose output the README shows and
that trains nothing (`compare`, `summary`, `models`) is run, and each line of output the README
shows must be one the command prints now, word for word and number for number (spacing aside).
The model table's options are options of the models it names, and the figures the prose quotes
from those commands are theirs."""

import re
import shlex
from pathlib import Path

import pytest

from cnnlab.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
RUN = ("compare", "summary", "models")
"""Commands whose examples are run: they build models on the meta device, nothing trains."""
ELIDED = "..."
"""A line of a shown output that stands for lines left out."""


def fenced_blocks(text: str) -> list[tuple[str, list[str], int, int]]:
    """Each fenced code block: its language, its lines, and the lines (0-based) of its opening
    and closing fences."""
    blocks, lines, start = [], text.splitlines(), None
    for number, line in enumerate(lines):
        if line.startswith("```") and start is None:
            start, language = number, line[3:].strip()
        elif line.startswith("```"):
            blocks.append((language, lines[start + 1:number], start, number))
            start = None
    return blocks


def shown_outputs() -> list[tuple[list[str], list[str], int]]:
    """(command, shown output lines, README line) for each ``text`` block right after a
    ``bash`` block: the output of that block's last command."""
    blocks = fenced_blocks(README.read_text())
    found = []
    for (language, commands, _, end), (kind, output, start, _) in zip(blocks, blocks[1:],
                                                                   strict=False):
        if language != "bash" or kind != "text" or start != end + 2:
            continue
        last = [shlex.split(line.split(" #")[0]) for line in commands if line.strip()][-1]
        found.append((last, output, start + 1))
    return found


EXAMPLES = [(argv, output, line) for argv, output, line in shown_outputs()
            if argv[0] == "cnnlab" and argv[1] in RUN]


def test_the_readme_shows_compare_and_summary_output():
    assert {argv[1] for argv, _, _ in EXAMPLES} >= {"compare", "summary"}


@pytest.mark.parametrize(("argv", "shown", "line"), EXAMPLES,
                         ids=[" ".join(argv[1:]) for argv, _, _ in EXAMPLES])
def test_each_output_the_readme_shows_is_what_the_command_prints(argv, shown, line, capsys):
    assert main(argv[1:]) == 0
    printed = [printed_line.split() for printed_line in capsys.readouterr().out.splitlines()]
    at = 0
    for shown_line in shown:
        if not shown_line.strip() or shown_line.strip() == ELIDED:
            continue
        if shown_line.split() in printed[at:]:
            at = printed.index(shown_line.split(), at) + 1
            continue
        near = [" ".join(words) for words in printed if words[:1] == shown_line.split()[:1]]
        pytest.fail(f"README.md line {line}, `{' '.join(argv)}`: the README shows\n"
                    f"  {shown_line.strip()}\nbut the command prints "
                    + ("\n  ".join(["", *near]) if near else "no such line"))


def _table_rows(heading: str) -> list[list[str]]:
    """The body rows of the README's markdown table whose header starts with `heading`."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def _names(cell: str) -> list[str]:
    """Model names of a names cell; ``resnet18/34/50`` is resnet18, resnet34, resnet50."""
    names = []
    for token in re.findall(r"`([^`]+)`", cell):
        first, *more = token.split("/")
        stem = re.sub(r"\d+$", "", first)
        names += [first, *(stem + suffix for suffix in more)]
    return names


def _without_parentheses(text: str) -> str:
    """`text` without its parenthesised asides (nested ones included): values and notes."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text
        text = shorter


def test_the_model_table_lists_options_the_models_take():
    from cnnlab.models import list_models
    from cnnlab.models.spec import COMMON_OPTIONS, model_options

    registered = set(list_models())
    for family, names_cell, options_cell in _table_rows("family"):
        names = _names(names_cell)
        assert set(names) <= registered, (family, set(names) - registered)
        options = {name: set(model_options(name)) | set(COMMON_OPTIONS) for name in names}
        for segment in _without_parentheses(options_cell).split(";"):
            scope = re.match(r"\s*`([^`]+)`:", segment)
            models = [scope.group(1)] if scope and scope.group(1) in options else names
            listed = re.findall(r"`([^`]+)`", segment[scope.end():] if scope else segment)
            allowed = set().union(*(options[name] for name in models))
            assert set(listed) <= allowed, (family, models, set(listed) - allowed)


def test_the_figures_the_prose_quotes_are_the_commands():
    from cnnlab.analysis.tables import compare

    text = " ".join(README.read_text().split())
    found = re.search(r"AlexNet's fully connected layers hold (\d+)% of its parameters while its "
                      r"convolutions do (\d+)% of the FLOPs", text)
    assert found, "the sentence on AlexNet's parameters and FLOPs is gone"
    alexnet = compare(["alexnet"]).models[0].summary
    assert (int(found.group(1)), int(found.group(2))) == (round(alexnet.fc.param_share * 100),
                                                          round(alexnet.conv.flop_share * 100))
    found = re.search(r"6 in `config=imagenet`, torchvision's layout, ([\d,]+) parameters", text)
    assert found, "the sentence on AlexNet's imagenet layout is gone"
    imagenet = compare(["alexnet:config=imagenet"]).models[0].summary
    assert int(found.group(1).replace(",", "")) == imagenet.params
