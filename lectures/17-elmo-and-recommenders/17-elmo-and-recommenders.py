# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture 17 · ELMo and recommenders
#
# Topics: contextual embeddings, DSSM, neural collaborative filtering.
#
# This lecture covers
# 1. the first idea, with its formula;
# 2. the second idea, implemented in `course_lib.elmo_and_recommenders` and checked against an oracle;
# 3. a small experiment that measures what the lecture claims.
#
# Everything numerical comes from `course_lib.elmo_and_recommenders`, whose tests (`tests/test_elmo_and_recommenders.py`)
# compare each function with an independent implementation.

# %% tags=["parameters"]
SMOKE = False

# %%
import numpy as np
import torch

from course_lib import elmo_and_recommenders as lib
from course_lib.notebook import claim, setup_notebook

SMOKE = setup_notebook(SMOKE, seed=0)
N_SAMPLES = 256 if SMOKE else 65_536
print(f"smoke mode: {SMOKE}; {N_SAMPLES} samples")

# %% [markdown]
# ## 1. The first idea
#
# The mean squared error of predictions $\hat y$ against targets $y$:
#
# $$\mathrm{MSE}(\hat y, y) = \frac{1}{n} \sum_{i=1}^{n} (\hat y_i - y_i)^2 .$$

# %%
target = torch.randn(N_SAMPLES)
prediction = target + 0.1 * torch.randn(N_SAMPLES)
loss = lib.mean_squared_error(prediction, target)
print(f"MSE of predictions with noise of standard deviation 0.1: {float(loss):.4f} (expected about 0.01)")

claim(float(loss) >= 0.0, "the mean squared error is never negative")

# %% [markdown]
# ## 2. The second idea
#
# (Replace this skeleton: one section per topic of the syllabus entry, each with its formula, the
# code from `course_lib.elmo_and_recommenders` that computes it and a plot or a number that shows it.)

# %%
errors = np.array([float(lib.mean_squared_error(target + s * torch.randn(N_SAMPLES), target)) for s in (0.1, 0.2, 0.4)])
print("MSE for noise 0.1, 0.2, 0.4:", np.round(errors, 4))

# %% [markdown]
# ## Summary
#
# - the first idea;
# - the second idea.
