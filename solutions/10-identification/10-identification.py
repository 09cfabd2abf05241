# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "solution": false, "schema_version": 3}
# # Assignment 10 · Face identification
#
# In this assignment you implement the building blocks of lecture 10.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some of them also contain hidden tests that run only when your notebook is
# graded, on inputs you have not seen, against PyTorch. Run **Kernel → Restart & Run All**
# before you submit.
#
# Rules: tensor arithmetic only inside your functions (no `torch.nn.functional`, no
# `course_lib.identification`).

# %% tags=["parameters"]
SMOKE = False

# %%
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "mse_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. The mean squared error (2 points)
#
# $$\mathrm{MSE}(\hat y, y) = \frac{1}{n} \sum_{i=1}^{n} (\hat y_i - y_i)^2$$
#
# over all $n$ entries of two tensors of the same shape. Raise a `ValueError` when the shapes
# differ.

# %% nbgrader={"grade": false, "grade_id": "mse", "locked": false, "solution": true, "schema_version": 3}
def mean_squared_error(prediction, target):
    """Mean of the squared differences over every entry. prediction, target: the same shape -> scalar tensor."""
    ### BEGIN SOLUTION
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    diff = prediction - target
    return (diff * diff).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "mse_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
assert_close(mean_squared_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])), 2.0, "MSE of [1, 2] against [1, 4] is (0 + 4) / 2")
try:
    mean_squared_error(torch.zeros(2), torch.zeros(3))
except ValueError:
    pass
else:
    raise AssertionError("mean_squared_error must raise ValueError when the shapes differ")
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed(1010)
for _shape in [(1,), (7,), (3, 5), (2, 3, 4)]:
    _p, _t = torch.randn(_shape, generator=_gen), torch.randn(_shape, generator=_gen)
    assert_close(mean_squared_error(_p, _t), torch.nn.functional.mse_loss(_p, _t), f"MSE on random tensors of shape {_shape}")
### END HIDDEN TESTS
