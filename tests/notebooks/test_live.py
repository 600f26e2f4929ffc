"""The live board: how often it redraws, and that watching training reads nothing more back."""

import functools

import pytest
import torch

import cnnlab
from cnnlab.data import FashionMNIST
from cnnlab.errors import UsageError
from cnnlab.train import live
from cnnlab.train.live import LiveBoard
from cnnlab.train.progress import EpochProgress, in_notebook
from cnnlab.train.trainer import Trainer, _Session

READ_BACKS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__array__")
"""The ways a tensor's value reaches Python (each waits for the device)."""


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeDisplay:
    """Counts redraws and remembers when each happened and what the last one showed."""

    def __init__(self, clock=None):
        self.clock, self.times, self.figure = clock, [], None

    def show(self, figure) -> None:
        self.times.append(self.clock() if self.clock else None)
        self.figure = figure


def row(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 1 / epoch, "train_acc": 0.5 + 0.1 * epoch,
            "val_loss": 1.1 / epoch, "val_acc": 0.45 + 0.1 * epoch}


def run_board(board, clock, epochs: int, steps: int, seconds_per_step: float) -> None:
    for epoch in range(epochs):
        board.start(epoch, steps)
        for step in range(1, steps + 1):
            clock.now += seconds_per_step
            board.update(step, 2.0 - step / steps, 0.1 + step / steps / 2)
        board.end(row(epoch + 1))


def test_redraws_at_most_once_per_epoch_end_and_once_per_interval():
    clock = FakeClock()
    display = FakeDisplay(clock)
    board = LiveBoard(3, interval=5.0, display=display, clock=clock)
    run_board(board, clock, epochs=3, steps=100, seconds_per_step=0.25)  # 25 s an epoch
    elapsed = clock.now
    assert board.redraws == len(display.times)
    assert len(display.times) <= 3 + elapsed / 5.0
    assert len(display.times) >= 3 + 3 * 4  # it does redraw within epochs, every 5 s
    ends = {25.0, 50.0, 75.0}
    gaps = [b - a for a, b in zip([0.0, *display.times], display.times, strict=False)
            if b not in ends]
    assert min(gaps) >= 5.0  # between redraws within an epoch: at least the interval


def test_short_epochs_redraw_only_at_their_ends():
    clock = FakeClock()
    display = FakeDisplay(clock)
    board = LiveBoard(4, interval=3.0, display=display, clock=clock)
    run_board(board, clock, epochs=4, steps=16, seconds_per_step=1 / 16)  # 1 s an epoch
    assert display.times == [1.0, 2.0, 3.0, 4.0]


def test_the_board_shows_the_running_and_the_epoch_values():
    clock = FakeClock()
    board = LiveBoard(2, display=FakeDisplay(), clock=clock)
    run_board(board, clock, epochs=2, steps=4, seconds_per_step=0.1)
    loss, accuracy = board.figure.axes
    train_loss, val_loss = (list(line.get_ydata()) for line in loss.lines)
    assert val_loss == [1.1, 0.55]
    assert len(train_loss) == 8 and train_loss[3] == 1.0 and train_loss[7] == 0.5
    assert list(accuracy.lines[1].get_xdata()) == [1, 2]
    assert accuracy.get_xlim() == (0, 2)  # the whole run's axis from the start


def test_outside_a_notebook_nothing_changes():
    assert not in_notebook()
    assert EpochProgress(2).board is None
    with pytest.raises(UsageError, match="not a Jupyter kernel"):
        EpochProgress(2, live=True)
    assert EpochProgress(2, enabled=False, live=True).board is None


@pytest.fixture(scope="module")
def tiny_data():
    return FashionMNIST(batch_size=32, subset=256)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads can run 40x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def count_read_backs(monkeypatch) -> dict:
    counts = dict.fromkeys([*READ_BACKS, "sync"], 0)

    def counting(name, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return method(*args, **kwargs)
        return wrapper

    for name in READ_BACKS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(_Session, "_sync", counting("sync", _Session._sync))
    return counts


def fit(data, live_board: bool, monkeypatch) -> dict:
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet-bn")
    with monkeypatch.context() as patch:
        counts = count_read_backs(patch)
        Trainer(max_epochs=2, lr=0.1, device="cpu", live=live_board).fit(model, data)
    return counts


def test_watching_training_reads_nothing_more_back(tiny_data, one_thread, monkeypatch):
    display = FakeDisplay()
    boards = []

    def every_update(max_epochs, **options):  # redraw at every sync point: the most it can ask
        boards.append(LiveBoard(max_epochs, interval=0.0, display=display, clock=FakeClock(),
                                **options))
        return boards[-1]

    monkeypatch.setattr(live, "LiveBoard", every_update)
    watched = fit(tiny_data, True, monkeypatch)
    unwatched = fit(tiny_data, False, monkeypatch)
    steps = 2 * 256 // 32
    assert watched == unwatched and watched["sync"] == steps
    assert boards[0].redraws == len(display.times) >= steps  # every update and epoch end
    val_acc = [line for line in display.figure.axes[1].lines][1].get_ydata()
    assert len(val_acc) == 2 and all(0 <= acc <= 1 for acc in val_acc)


def test_slow_drawing_is_kept_to_a_small_share_of_the_time():
    clock = FakeClock()

    class SlowDisplay(FakeDisplay):
        def show(self, figure):
            super().show(figure)
            clock.now += 1.0  # a second to render each figure

    display = SlowDisplay(clock)
    board = LiveBoard(1, interval=2.0, display=display, clock=clock)
    run_board(board, clock, epochs=1, steps=400, seconds_per_step=0.25)  # 100 s of steps
    within = display.times[:-1]  # the first after `interval`, then 20 s after each 1 s draw
    assert within == [2.0, 23.0, 44.0, 65.0, 86.0]
    assert all(b - a >= 1 + 1 / live.DRAW_SHARE for a, b in zip(within, within[1:], strict=False))


@pytest.mark.parametrize(("val_fraction", "split"), [(0.0, "test"), (0.25, "val")])
def test_the_console_the_board_the_table_and_the_curves_name_the_split_alike(
        val_fraction, split, one_thread, capsys, monkeypatch, tmp_path):
    """Each epoch is measured on the validation split, or on the test split where none is held
    out: every place that shows those figures calls the split by the same word."""
    boards = []

    def board(max_epochs, **options):
        boards.append(LiveBoard(max_epochs, interval=1e9, display=FakeDisplay(), **options))
        return boards[-1]

    monkeypatch.setattr(live, "LiveBoard", board)
    data = FashionMNIST(batch_size=64, subset=128, val_fraction=val_fraction)
    history = Trainer(max_epochs=1, lr=0.1, device="cpu", live=True).fit(
        cnnlab.create_model("lenet"), data, out=tmp_path / "run")
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch"))
    assert f"  {split} loss " in line and ("val" if split == "test" else "test") not in line
    assert history.split == split and f"{split} acc" in history.table().headers
    legends = [text.get_text() for ax in boards[0].figure.axes for text in ax.get_legend().texts]
    assert f"{split} accuracy" in legends and f"{split} loss" in legends
    curves = [text.get_text() for ax in history.plot().axes for text in ax.get_legend().texts]
    assert curves == legends
