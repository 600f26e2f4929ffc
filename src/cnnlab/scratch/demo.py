"""`cnnlab demo edges`: the edge-detection story of d2l 7.2 told with the scratch operators."""

from __future__ import annotations

import torch

from cnnlab.scratch.conv import Conv2D, corr2d


def edge_image() -> torch.Tensor:
    """A 6x8 white image (ones) with a black (zero) vertical stripe in columns 2 to 5."""
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    return X


def edge_kernel() -> torch.Tensor:
    """The 1x2 kernel [[1, -1]]: nonzero exactly where horizontally adjacent pixels differ."""
    return torch.tensor([[1.0, -1.0]])


def learn_edge_kernel(X, Y, steps: int = 10, lr: float = 3e-2, seed: int = 0):
    """Fit a bias-free 1x2 Conv2D to map X to Y by plain gradient descent on the summed squared
    error; return the learned kernel and the loss at each step (before that step's update)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = Conv2D((1, 2), bias=False)
    losses = []
    for _ in range(steps):
        loss = ((layer(X) - Y) ** 2).sum()
        layer.zero_grad()
        loss.backward()
        with torch.no_grad():
            layer.weight -= lr * layer.weight.grad
        losses.append(loss.item())
    return layer.weight.detach(), losses


def format_matrix(M: torch.Tensor) -> str:
    """Rows of numbers, one per line, without trailing zeros and with -0 shown as 0."""
    return "\n".join("  " + " ".join(f"{v + 0.0:3g}" for v in row.tolist()) for row in M)


def edge_detection_demo(steps: int = 10, lr: float = 3e-2, seed: int = 0) -> None:
    """Print the story: the edge image, its edges, the transposed case, the learned kernel."""
    X, K = edge_image(), edge_kernel()
    Y = corr2d(X, K)
    print("X: a 6x8 white image (1) with a black stripe (0) in columns 2-5")
    print(format_matrix(X))
    print("\ncorr2d(X, K) with K = [[1, -1]]: 1 marks a white-to-black edge, -1 black-to-white")
    print(format_matrix(Y))
    print("\ncorr2d(X.T, K): the transposed image has only horizontal edges, which K cannot see")
    print(format_matrix(corr2d(X.T, K)))
    print(f"\nLearning a 1x2 kernel from (X, Y): gradient descent, lr {lr}, summed squared error")
    kernel, losses = learn_edge_kernel(X, Y, steps=steps, lr=lr, seed=seed)
    for step, loss in enumerate(losses, start=1):
        if step % 2 == 0:
            print(f"  step {step:2d}, loss {loss:.3f}")
    learned = [round(v, 4) for v in kernel.flatten().tolist()]
    print(f"learned kernel: {learned} (target [1.0, -1.0])")
