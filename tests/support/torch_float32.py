"""PyTorch float32 counterparts of the engine, and the tolerance float32 answers are compared with.

Importing this module skips the importing test module where torch is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS

torch = pytest.importorskip("torch")
F = torch.nn.functional

# float32 carries about 7 significant digits; a pass of a few layers loses one or two of them.
RTOL = 1e-5
# An element that cancels (a sum of terms of both signs) keeps the absolute error of its terms:
# atol is relative to the largest magnitude of the array compared (or of what it was computed from).
ATOL_SCALE = 1e-5
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


def numpy(a):
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def assert_close32(ours, theirs, what="", scale=0.0):
    """``ours`` is a float32 array close to torch's float32 ``theirs`` (a tensor or an array), to float32's
    precision relative to ``theirs``' largest magnitude (or ``scale``, that of what it was computed from)."""
    theirs = numpy(theirs)
    assert ours.dtype == np.float32, what
    scale = max(scale, float(np.abs(theirs).max(initial=0.0)), 1e-2)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL_SCALE * scale, err_msg=what)


def torch_loss(name, pre, out, y, reduction, weight=None, label_smoothing=0.0):
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(pre, y, reduction=reduction)
    if name == "cross_entropy":
        return F.cross_entropy(pre, y, weight=weight, label_smoothing=label_smoothing, reduction=reduction)
    return F.mse_loss(out, y, reduction=reduction)


def f32(a):
    return torch.tensor(np.asarray(a, dtype=np.float32))


def torch_params(layers):
    """The layers' float64 arrays rounded to float32, as torch.tensor(..., dtype=float32) rounds them."""
    return [(f32(l.weights).requires_grad_(), f32(l.biases).requires_grad_()) for l in layers]


def torch_forward(params, acts, x):
    a = f32(x)
    pres, posts = [], []
    for (w, b), act in zip(params, acts):
        z = a @ w.T + b
        a = TORCH_ACTIVATIONS[act](z)
        pres.append(z)
        posts.append(a)
    return pres, posts


def torch_train(layers, acts, x, y, loss, reduction, make_opt, iterations, masks):
    params = torch_params(layers)
    flat = [t for pair in params for t in pair]
    opt = make_opt(flat)
    yt = f32(y)
    losses, grads, snapshots = [], [], []
    for _ in range(iterations):
        opt.zero_grad()
        pres, posts = torch_forward(params, acts, x)
        value = torch_loss(loss, pres[-1], posts[-1], yt, reduction)
        value.backward()
        grads.append([t.grad.detach().clone() for t in flat])
        before = [t.detach().clone() for t in flat]
        opt.step()
        with torch.no_grad():
            for t, b, m in zip(flat, before, masks):
                t.copy_(torch.where(m, t, b))
        losses.append(value.item())
        snapshots.append([t.detach().clone() for t in flat])
    return losses, grads, snapshots
