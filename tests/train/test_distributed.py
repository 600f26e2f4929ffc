"""Data-parallel training: two gloo processes on the CPU take the same steps as one process."""

from cnnlab.cli.train import strip_nproc
from cnnlab.train.checkpoint import load_checkpoint

# 256 images in batches of 64: every global batch splits evenly over 2 ranks.
ARGS = ["train", "lenet-modern", "--subset", "256", "--batch-size", "64", "--epochs", "1",
        "--device", "cpu"]


def test_two_gloo_ranks_end_with_the_weights_of_one_process(tmp_path, run_cnnlab,
                                                            assert_same_tensors):
    one, two = tmp_path / "one", tmp_path / "two"
    run_cnnlab(*ARGS, "--out", one)
    launched = run_cnnlab(*ARGS, "--out", two, "--nproc", "2")
    single, parallel = load_checkpoint(one / "last.pt"), load_checkpoint(two / "last.pt")
    assert parallel["config"]["world_size"] == 2
    assert_same_tensors(single["model"], parallel["model"], atol=1e-5)
    assert abs(single["history"][0]["train_loss"] - parallel["history"][0]["train_loss"]) < 1e-5
    assert single["history"][0]["val_acc"] == parallel["history"][0]["val_acc"]
    assert launched.stdout.count("test accuracy") == 1  # only rank 0 reports (and writes)



def test_nproc_relaunches_the_same_command_line_without_itself():
    argv = ["lenet", "--lr", "0.05", "--amp", "--nproc", "2", "--momentum", "0", "--nproc=3",
            "--out", "runs/x"]
    assert strip_nproc(argv) == ["lenet", "--lr", "0.05", "--amp", "--momentum", "0",
                                 "--out", "runs/x"]
