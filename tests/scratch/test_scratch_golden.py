"""The from-scratch convolution and pooling give the values the d2l chapter 7 examples print
(the 3x3 cross-correlation, the edge image and its kernel, padding and stride shapes, multiple
channels, pooling), for the loop and the vectorised versions alike."""

import pytest
import torch

from cnnlab.scratch import (
    Conv2D,
    conv2d,
    conv_output_shape,
    corr2d,
    corr2d_loop,
    corr2d_multi_in,
    corr2d_multi_in_loop,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
    pool2d,
    pool2d_loop,
)
from cnnlab.scratch.demo import edge_image, edge_kernel, learn_edge_kernel

CORR2D = [corr2d, corr2d_loop]
POOL2D = [pool2d, pool2d_loop]


def tensor(values):
    return torch.tensor(values, dtype=torch.float32)


@pytest.mark.parametrize("corr", CORR2D)
def test_corr2d_on_the_3x3_example(corr):
    X = tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    K = tensor([[0, 1], [2, 3]])
    assert torch.equal(corr(X, K), tensor([[19, 25], [37, 43]]))


@pytest.mark.parametrize("corr", CORR2D)
def test_vertical_edges_are_found_and_the_transpose_has_none(corr):
    X, K = edge_image(), edge_kernel()
    assert torch.equal(edge_image()[0], tensor([1, 1, 0, 0, 0, 0, 1, 1]))
    assert torch.equal(corr(X, K), tensor([[0, 1, 0, 0, 0, -1, 0]] * 6))
    assert torch.equal(corr(X.T, K), torch.zeros(8, 5))


@pytest.mark.parametrize("corr", CORR2D)
def test_diagonal_edges_of_the_identity_image(corr):
    X, K = torch.eye(5), edge_kernel()
    expected = [[1, 0, 0, 0], [-1, 1, 0, 0], [0, -1, 1, 0], [0, 0, -1, 1], [0, 0, 0, -1]]
    assert torch.equal(corr(X, K), tensor(expected))
    expected_t = [[1, -1, 0, 0, 0], [0, 1, -1, 0, 0], [0, 0, 1, -1, 0], [0, 0, 0, 1, -1]]
    assert torch.equal(corr(X, K.T), tensor(expected_t))


def test_learning_the_edge_kernel_by_gradient_descent():
    X = edge_image()
    Y = corr2d(X, edge_kernel())
    kernel, losses = learn_edge_kernel(X, Y, steps=10, lr=3e-2)
    assert len(losses) == 10
    assert losses[-1] < 0.1
    assert losses == sorted(losses, reverse=True)
    assert torch.allclose(kernel, edge_kernel(), atol=0.05, rtol=0)


def test_conv2d_layer_is_corr2d_plus_a_learnable_scalar_bias():
    layer = Conv2D((1, 2))
    with torch.no_grad():
        layer.bias.fill_(0.5)
    X = edge_image()
    assert torch.equal(layer(X), corr2d(X, layer.weight.detach()) + 0.5)
    layer(X).sum().backward()
    assert layer.weight.grad.shape == (1, 2) and layer.bias.grad.shape == (1,)
    assert Conv2D(3, bias=False).bias is None
    assert [name for name, _ in Conv2D(3, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize(
    "kernel, padding, stride, expected",
    [
        (3, 1, 1, (8, 8)),
        ((5, 3), (2, 1), 1, (8, 8)),
        (3, 1, 2, (4, 4)),
        ((3, 5), (0, 1), (3, 4), (2, 2)),
    ],
)
def test_output_shapes_on_an_8x8_input(kernel, padding, stride, expected):
    assert conv_output_shape((8, 8), kernel, padding, stride) == expected
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    Y = conv2d(torch.rand(1, 1, 8, 8), torch.rand(1, 1, kh, kw), stride=stride, padding=padding)
    assert Y.shape == (1, 1, *expected)


def two_channel_example():
    X = torch.stack([torch.arange(9.0).reshape(3, 3), torch.arange(1.0, 10.0).reshape(3, 3)])
    K = tensor([[[0, 1], [2, 3]], [[1, 2], [3, 4]]])
    return X, K


@pytest.mark.parametrize("multi_in", [corr2d_multi_in, corr2d_multi_in_loop])
def test_multi_input_channels(multi_in):
    X, K = two_channel_example()
    assert torch.equal(multi_in(X, K), tensor([[56, 72], [104, 120]]))


@pytest.mark.parametrize("multi_in_out", [corr2d_multi_in_out, corr2d_multi_in_out_loop])
def test_multi_input_and_output_channels(multi_in_out):
    X, K = two_channel_example()
    K = torch.stack((K, K + 1, K + 2))
    expected = [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]
    assert torch.equal(multi_in_out(X, K), tensor(expected))


def test_1x1_convolution_is_a_matrix_product():
    generator = torch.Generator().manual_seed(0)
    X = torch.normal(0, 1, (3, 3, 3), generator=generator)
    K = torch.normal(0, 1, (2, 3, 1, 1), generator=generator)
    Y1, Y2 = corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out(X, K)
    assert Y1.shape == (2, 3, 3)
    assert float((Y1 - Y2).abs().sum()) < 1e-6


@pytest.mark.parametrize("pool", POOL2D)
def test_max_and_average_pooling_on_3x3(pool):
    X = tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert torch.equal(pool(X, 2, "max", stride=1), tensor([[4, 5], [7, 8]]))
    assert torch.equal(pool(X, (2, 2), "avg", stride=1), tensor([[2, 3], [5, 6]]))


@pytest.mark.parametrize("pool", POOL2D)
def test_pooling_padding_and_stride(pool):
    X = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    assert torch.equal(pool(X, 3), tensor([[[[10]]]]))
    assert torch.equal(pool(X, 3, padding=1, stride=2), tensor([[[[5, 7], [13, 15]]]]))
    assert torch.equal(
        pool(X, (2, 3), stride=(2, 3), padding=(0, 1)), tensor([[[[5, 7], [13, 15]]]])
    )


@pytest.mark.parametrize("pool", POOL2D)
def test_pooling_works_per_channel(pool):
    X = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    Y = pool(torch.cat((X, X + 1), dim=1), 3, padding=1, stride=2)
    assert torch.equal(Y, tensor([[[[5, 7], [13, 15]], [[6, 8], [14, 16]]]]))


def test_integer_inputs_are_computed_in_floating_point():
    X, K = torch.arange(9).reshape(3, 3), torch.tensor([[0, 1], [2, 3]])
    for Y in (corr2d(X, K), corr2d_loop(X, K), pool2d(X, 2, "avg", stride=1)):
        assert Y.dtype == torch.get_default_dtype()
    assert torch.equal(corr2d(X, K), tensor([[19, 25], [37, 43]]))
