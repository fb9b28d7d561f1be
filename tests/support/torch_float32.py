"""The tolerance float32 answers are compared with PyTorch's float32 ones (computed by
``tests.support.torch_reference`` with ``torch.float32``).

Importing this module skips the importing test module where torch is absent.
"""

from __future__ import annotations

import numpy as np

from tests.support.torch_reference import torch, torch_tensor

# The dtype the reference computes in (``torch_params(layers, F32)``, ``torch_forward(..., F32)``, ...).
F32 = torch.float32
# float32 carries about 7 significant digits; a pass of a few layers loses one or two of them.
RTOL = 1e-5
# An element that cancels (a sum of terms of both signs) keeps the absolute error of its terms:
# atol is relative to the largest magnitude of the array compared (or of what it was computed from).
ATOL_SCALE = 1e-5


def numpy(a):
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def assert_close32(ours, theirs, what="", scale=0.0):
    """``ours`` is a float32 array close to torch's float32 ``theirs`` (a tensor or an array), to float32's
    precision relative to ``theirs``' largest magnitude (or ``scale``, that of what it was computed from)."""
    theirs = numpy(theirs)
    assert ours.dtype == np.float32, what
    scale = max(scale, float(np.abs(theirs).max(initial=0.0)), 1e-2)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL_SCALE * scale, err_msg=what)


def f32(a):
    """``a`` as a float32 tensor (float64 numbers rounded to float32)."""
    return torch_tensor(a, F32)
