"""snnbp: backpropagation in deep spiking neural networks, reproduced.

Conventions (stated once, used everywhere):

* Spike rasters are time-major ``[T, B, N]`` (convolutional layers ``[T, B, C, H, W]``),
  binary float32 unless a test asks for float64.
* Time is in milliseconds; one simulation step is ``dt`` ms (HM2-BP: 1 step = 1 ms).
* Spike times are ``[B, N]`` tensors with ``float('inf')`` for "no spike".
* Functions are pure and typed; state goes in and out explicitly. ``nn.Module`` only where
  training holds parameters.
* Every random draw comes from a generator derived from the run's root seed
  (:mod:`snnbp.seeding`).
* ``device`` is a parameter everywhere (CPU by default).
* Gradients that are not plain autograd live in hand-written code with a float64
  reference or finite-difference test.
"""

__version__ = "0.1.0"
