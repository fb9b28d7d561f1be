"""The backprop engine: pure numpy (float64) and the standard library, no HTTP.

``activations`` and ``losses`` hold each function beside its derivative,
``network`` the forward pass and backpropagation, ``optimizers`` torch.optim's
SGD and Adam on flat vectors, ``training`` the training loop; ``explain`` (in words
and in LaTeX, ``latex``) and ``graph`` (the scalar computation graph) teach it.
"""
