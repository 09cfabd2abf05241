"""course_lib: the tested reference implementations the Foundations of Deep Learning course teaches.

Lectures and assignments import from here, so every formula a notebook shows is the one the test
suite checks against an independent oracle (PyTorch's ops and autograd, ``torch.optim``, finite
differences, ...). One module per topic — :mod:`~course_lib.activations`, :mod:`~course_lib.layers`,
:mod:`~course_lib.autograd`, :mod:`~course_lib.conv`, :mod:`~course_lib.optim`,
:mod:`~course_lib.regularization`, :mod:`~course_lib.training` — plus the data loaders
(:mod:`course_lib.data`), the notebook helpers (:mod:`course_lib.notebook`, :mod:`course_lib.gpu`)
and the assertion helpers of the assignments' tests (:mod:`course_lib.testing`). ``syllabus.toml``
names the lecture that teaches each module.

This package depends on the scientific stack only (torch, numpy, scipy, matplotlib, tqdm,
scikit-learn, networkx); the course's tooling lives in ``course_tools``, which this package never
imports.
"""

__version__ = "0.1.0"
