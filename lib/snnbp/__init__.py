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

Layers (data flows one way: a module imports from its own layer and the ones above it):

1. **core**: :mod:`~snnbp.config` (with :mod:`~snnbp.config_yaml` and :mod:`~snnbp.config_values`),
   :mod:`~snnbp.provenance`, :mod:`~snnbp.io`, :mod:`~snnbp.paths`, :mod:`~snnbp.seeding`,
   :mod:`~snnbp.progress`, :mod:`~snnbp.targets`, :mod:`~snnbp.notation`, :mod:`~snnbp.learner` (the
   protocol the methods implement) and :mod:`~snnbp.analysis` (statistics of tensors);
2. **data and encoding**: :mod:`~snnbp.data`, :mod:`~snnbp.datasets`, :mod:`~snnbp.encoding`,
   :mod:`~snnbp.classes`;
3. **the methods and the simulator** (equations only): :mod:`~snnbp.hm2bp`, :mod:`~snnbp.stdbp`,
   :mod:`~snnbp.ann`, :mod:`~snnbp.yoso` (its ``study`` module excepted);
4. **training and runs**: :mod:`~snnbp.methods`, :mod:`~snnbp.run_folder` (a run folder, its
   checkpoints, the identity check, rebuilding a saved model), :mod:`~snnbp.train`, :mod:`~snnbp.distributed`,
   :mod:`~snnbp.devices`, :mod:`~snnbp.runs`, :mod:`~snnbp.execution`, :mod:`~snnbp.sweep`;
5. **analyses and studies**: :mod:`~snnbp.problem_analysis`,
   :mod:`~snnbp.results_view`, :mod:`~snnbp.table`, :mod:`~snnbp.report`, :mod:`snnbp.yoso.study`
   (they read runs through :mod:`~snnbp.run_folder` and compute tables; none imports the
   training loop, which ``tests/test_results_view.py`` checks);
6. **figures**: :mod:`~snnbp.plots` (take arrays and tables and draw; they import no method, no
   analysis and no training loop, which ``tests/test_results_view.py`` checks module by module);
7. **notebooks and the command line**: :mod:`~snnbp.cli`, :mod:`~snnbp.figures`,
   :mod:`~snnbp.notebook`.
"""

__version__ = "0.1.0"
