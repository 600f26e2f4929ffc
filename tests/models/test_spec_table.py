"""Each chapter model builds what its chapter builds: its parameters, forward MFLOPs and the
output shape of every top-level child are those of `spec_facts.SPEC_TABLE`."""

import pytest
import torch
from spec_facts import SPEC_TABLE
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.models import create_model


def stage_shapes_and_flops(model, size):
    """Output shape of each top-level child and total forward FLOPs, at batch 1."""
    shapes = []
    hooks = [child.register_forward_hook(
        lambda module, inputs, output: shapes.append("x".join(map(str, output.shape[1:]))))
        for child in model.children()]
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 1, size, size, device="meta"))
    for hook in hooks:
        hook.remove()
    return " ".join(shapes), counter.get_total_flops()


@pytest.mark.parametrize("name", SPEC_TABLE)
def test_spec_table_row(name):
    size, params, mflops, shapes = SPEC_TABLE[name]
    with torch.device("meta"):  # shapes and FLOPs need no arithmetic
        model = create_model(name, init=None)
    assert sum(p.numel() for p in model.parameters()) == params
    got_shapes, flops = stage_shapes_and_flops(model, size)
    assert got_shapes == shapes
    assert round(flops / 1e6, 1) == mflops


def test_scratch_batchnorm_lenet_computes_what_nn_batchnorm_lenet_does():
    torch.manual_seed(0)
    scratch = create_model("lenet-bn-scratch")
    torch.manual_seed(0)
    builtin = create_model("lenet-bn")
    assert sum(p.numel() for p in scratch.parameters()) == 44_878
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(scratch(x), builtin(x))
