"""PyTorch counterparts of the engine, in a torch dtype (``torch.float64`` or ``torch.float32``):
activations, losses, a network's forward pass and a training run with an elementwise freeze.

The float64 parity tests (``tests/nn/test_torch_parity.py``) and the float32 ones (through
``tests.support.torch_float32``) compute their reference answers here.
Importing this module skips the importing test module where torch is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS

torch = pytest.importorskip("torch")
F = torch.nn.functional

# The hidden activations a random network draws from: the elementwise ones.
HIDDEN = sorted(name for name, a in ACTIVATIONS.items() if a.elementwise)
TORCH_ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "softmax": lambda z: F.softmax(z, dim=1),
}
NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


def torch_tensor(a, dtype):
    """``a`` (an array or numbers) as a tensor of ``dtype``: float64 numbers rounded by numpy to float32 for
    ``torch.float32``, as torch.tensor(..., dtype=torch.float32) rounds them."""
    return torch.tensor(np.asarray(a, dtype=NUMPY_DTYPES[dtype]))


def torch_loss(name, pre, out, y, reduction, weight=None, label_smoothing=0.0):
    """The engine's loss ``name`` in torch, from the last layer's pre-activation ``pre`` (the fused losses)
    or its activation ``out`` (mse); ``weight`` and ``label_smoothing`` are cross_entropy's options."""
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(pre, y, reduction=reduction)
    if name == "cross_entropy":
        return F.cross_entropy(pre, y, weight=weight, label_smoothing=label_smoothing, reduction=reduction)
    return F.mse_loss(out, y, reduction=reduction)


def torch_params(layers, dtype):
    """Each layer's (weights, biases) as leaf tensors of ``dtype`` that collect gradients."""
    return [(torch_tensor(l.weights, dtype).requires_grad_(), torch_tensor(l.biases, dtype).requires_grad_()) for l in layers]


def torch_forward(params, acts, x, dtype):
    """Every layer's pre-activations and activations for the inputs ``x`` (taken as ``dtype``)."""
    a = torch_tensor(x, dtype)
    pres, posts = [], []
    for (w, b), act in zip(params, acts):
        z = a @ w.T + b
        a = TORCH_ACTIVATIONS[act](z)
        pres.append(z)
        posts.append(a)
    return pres, posts


def trainable_masks(rng, layers, frozen):
    """A boolean tensor per weights and biases array, in torch's order (layer 0's weights, its biases, ...):
    ``True`` where a parameter trains; with ``frozen``, about 40% drawn from ``rng`` are ``False``."""
    masks = []
    for l in layers:
        for shape in (l.weights.shape, l.biases.shape):
            masks.append(torch.tensor(rng.uniform(size=shape) < 0.6) if frozen else torch.ones(shape, dtype=torch.bool))
    return masks


def flat_mask(layout, masks):
    """``masks`` (torch's order) as one boolean vector in the engine's flat ``layout``."""
    out = np.empty(layout.size, dtype=bool)
    for (w, b), (mw, mb) in zip(layout.views(out), zip(masks[::2], masks[1::2])):
        w[...] = mw.numpy()
        b[...] = mb.numpy()
    return out


def torch_train(layers, acts, x, y, loss, reduction, make_opt, iterations, masks, dtype):
    """``iterations`` steps of the optimizer ``make_opt(parameters)`` in ``dtype``, restoring after each step
    what ``masks`` say never changes. Returns each step's loss (a float), and each step's gradients and
    parameters after the step (lists of tensors in torch's order)."""
    params = torch_params(layers, dtype)
    flat = [t for pair in params for t in pair]
    opt = make_opt(flat)
    yt = torch_tensor(y, dtype)
    losses, grads, snapshots = [], [], []
    for _ in range(iterations):
        opt.zero_grad()
        pres, posts = torch_forward(params, acts, x, dtype)
        value = torch_loss(loss, pres[-1], posts[-1], yt, reduction)
        value.backward()
        grads.append([t.grad.detach().clone() for t in flat])
        before = [t.detach().clone() for t in flat]
        opt.step()
        with torch.no_grad():
            # An elementwise freeze: restore what the mask says never changes.
            for t, b, m in zip(flat, before, masks):
                t.copy_(torch.where(m, t, b))
        losses.append(value.item())
        snapshots.append([t.detach().clone() for t in flat])
    return losses, grads, snapshots
