"""Notebook forms of results: well-formed HTML with the numbers of the text form, and figures."""

import html.parser
import re
from collections import Counter

import pytest
from matplotlib.figure import Figure

import cnnlab
from cnnlab.analysis.tables import Comparison
from cnnlab.display import TableData, render_html
from cnnlab.models.build import build_for_input
from cnnlab.models.spec import ModelSpec
from cnnlab.train import History

VOID_TAGS = {"br", "hr", "img", "meta", "link", "col", "input"}
ROWS = [{"epoch": 1, "train_loss": 1.23456, "train_acc": 0.5012, "val_loss": 1.1, "val_acc": 0.55,
         "seconds": 3.21, "images_per_s": 12345.6, "lr": 0.1},
        {"epoch": 2, "train_loss": 0.654321, "train_acc": 0.7788, "val_loss": 0.7012,
         "val_acc": 0.7456, "seconds": 2.9, "images_per_s": 13500.2, "lr": 0.05}]


class StrictHTML(html.parser.HTMLParser):
    """Collects the text of an HTML fragment; fails on a tag closed out of order or left open."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []
        self.tags = Counter()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(fragment)
    parser.close()
    assert parser.open == [], f"left open: {parser.open}"
    return parser


def numbers(text: str) -> Counter:
    """Each number as written (``61,706``, ``0.8``, ``92.0%``), with how often it appears."""
    return Counter(re.findall(r"\d[\d,.]*%?", text))


def assert_same_numbers(text: str, fragment: str) -> StrictHTML:
    parsed = parse(fragment)
    assert parsed.tags["table"] >= 1
    missing = numbers(text) - numbers(" ".join(parsed.text))
    assert not missing, f"numbers of the text form missing from the HTML: {missing}"
    return parsed


def test_summary_html_has_the_layers_totals_and_split():
    result = cnnlab.summary(build_for_input("alexnet", device="meta"), 224, name="alexnet")
    parsed = assert_same_numbers(str(result), result._repr_html_())
    assert parsed.tags["table"] == 3
    text = " ".join(parsed.text)
    assert "46,764,746" in text and "92.0%" in text and "convolutional" in text
    assert repr(result) == str(result)  # readable in a terminal, too


def test_comparison_html_and_text_agree():
    comparison = cnnlab.compare(["alexnet", "nin"])
    assert isinstance(comparison, Comparison)
    assert [model.spec for model in comparison.models] == ["alexnet", "nin"]
    text = str(comparison)
    assert "46,764,746" in text and "1,992,166" in text and "65x65" in text
    assert_same_numbers(text, comparison._repr_html_())


def test_compare_takes_one_spec_and_a_side():
    comparison = cnnlab.compare("lenet:norm=batch", input_size=32)
    assert comparison.batch_size == 1
    assert comparison.models[0].summary.input_shape == (1, 1, 32, 32)


def test_model_spec_html_shows_its_options_against_the_defaults():
    spec = ModelSpec.parse("vgg11:arch=((1,32),(2,64)),dropout=0.25")
    parsed = assert_same_numbers(str(spec), spec._repr_html_())
    text = " ".join(parsed.text)
    assert "0.25" in text and "0.5" in text  # the value set, and the default it replaces


def test_history_html_text_and_outcome():
    history = History(ROWS)
    history.result = {"status": "completed", "test_acc": 0.7312, "test_loss": 0.7234}
    text = repr(history)
    for number in ("1.2346", "50.1%", "77.9%", "74.6%", "12,346", "0.05", "73.1%", "0.7234"):
        assert number in text
    parsed = assert_same_numbers(text, history._repr_html_())
    assert "test accuracy 73.1%" in " ".join(parsed.text)


def test_history_plot_is_a_figure_of_both_curves():
    figure = History(ROWS).plot()
    assert isinstance(figure, Figure)
    loss, accuracy = figure.axes
    assert [list(line.get_ydata()) for line in accuracy.lines] == [[0.5012, 0.7788],
                                                                   [0.55, 0.7456]]
    assert list(loss.lines[0].get_xdata()) == [1, 2]
    assert figure._repr_png_().startswith(b"\x89PNG")


def test_a_diverged_history_says_where():
    history = History()
    history.result = {"status": "diverged", "epoch": 1, "step": 2, "lr": 0.5}
    assert "diverged at epoch 1, step 2 (lr 0.5)" in " ".join(parse(history._repr_html_()).text)


@pytest.mark.parametrize("value", ["<b>bold</b>", "a & b"])
def test_html_escapes_text(value):
    fragment = render_html([TableData(value, ("x",), [(value,)], ("left",))])
    parsed = parse(fragment)
    assert parsed.tags["b"] == 0 and "".join(parsed.text).count(value) == 2
