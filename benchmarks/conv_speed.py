"""How fast is course_lib's im2col convolution? (lecture 03, issue "convolutions")

One float32 convolution, N=32 images, C=T=64 channels, 32x32 pixels, 3x3 kernel, stride 1,
padding 1, timed in one run, the candidates interleaved round by round so that a busy machine
slows all of them alike:

* ``torch.nn.functional.conv2d`` (oneDNN on a CPU);
* ``course_lib.conv.conv2d_im2col`` (patch matrix as a strided view, copied a few images at a time,
  one matrix product per chunk);
* the same im2col over the whole batch at once (one 75 MB patch matrix, one matrix product);
* the GEMM floor: the matrix product alone, ``(T x C*9) @ (C*9 x N*H*W)``, with random operands
  and no patch building, in three equivalent layouts (one 2-d product, a batched product with one
  matrix per image, and the transposed product); the fastest of them is the floor.
* ``conv2d_naive`` (one Python iteration per output value) on a slice of the batch and filters;
  its time per output value is constant, so the full-size time is extrapolated linearly
  (two slice sizes are timed to show that).

Goals from the issue: im2col within 2x of F.conv2d and within 1.5x of the GEMM floor.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib.conv import conv2d_im2col, conv2d_naive, im2col
from course_tools.benchmarking import BenchmarkReport, benchmark_main


def _interleaved(candidates: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each candidate per round; every round runs every candidate once, in turn."""
    for fn in candidates.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run(smoke: bool) -> BenchmarkReport:
    load_before = os.getloadavg()[0]
    torch.manual_seed(0)
    if smoke:
        n, c, t, hw, rounds, naive_slices = 4, 8, 8, 16, 3, [(1, 1), (1, 2)]
    else:
        n, c, t, hw, rounds, naive_slices = 32, 64, 64, 32, 50, [(1, 4), (1, 8)]
    x = torch.randn(n, c, hw, hw)
    w = torch.randn(t, c, 3, 3)
    k_rows, length = c * 9, hw * hw
    a = w.reshape(t, k_rows)
    b_2d = torch.randn(k_rows, n * length)
    b_batched = torch.randn(n, k_rows, length)
    b_t = torch.randn(n * length, k_rows)
    a_t = a.t().contiguous()

    max_err = (conv2d_im2col(x, w, padding=1) - F.conv2d(x, w, padding=1)).abs().max().item()

    candidates = {
        "torch.nn.functional.conv2d": lambda: F.conv2d(x, w, padding=1),
        "course_lib conv2d_im2col": lambda: conv2d_im2col(x, w, padding=1),
        "im2col of the whole batch + one matmul": lambda: torch.matmul(a, im2col(x, 3, padding=1)),
        "GEMM floor: (T, 9C) @ (9C, NHW)": lambda: a @ b_2d,
        "GEMM floor: (T, 9C) @ (N, 9C, HW)": lambda: a @ b_batched,
        "GEMM floor: (NHW, 9C) @ (9C, T)": lambda: b_t @ a_t,
    }
    times = _interleaved(candidates, rounds)
    median_ms = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
    min_ms = {name: 1e3 * min(ts) for name, ts in times.items()}
    floor_name = min((name for name in median_ms if name.startswith("GEMM")), key=median_ms.get)
    floor = median_ms[floor_name]
    torch_ms = median_ms["torch.nn.functional.conv2d"]
    ours = median_ms["course_lib conv2d_im2col"]
    # the fastest round of each is the least disturbed by other processes on a shared machine
    floor_min = min(min_ms[name] for name in min_ms if name.startswith("GEMM"))
    torch_min, ours_min = min_ms["torch.nn.functional.conv2d"], min_ms["course_lib conv2d_im2col"]

    # naive: time per output value on slices of the batch and of the filters, then extrapolate
    per_value = []
    for n_slice, t_slice in naive_slices:
        xs, ws = x[:n_slice], w[:t_slice]
        start = time.perf_counter()
        conv2d_naive(xs, ws, padding=1)
        seconds = time.perf_counter() - start
        per_value.append((n_slice * t_slice * length, seconds))
    naive_full_ms = 1e3 * per_value[-1][1] / per_value[-1][0] * (n * t * length)

    report = BenchmarkReport(
        title=f"3x3 convolution, N={n}, C=T={c}, {hw}x{hw}, stride 1, padding 1, float32 "
        f"({torch.get_num_threads()} torch threads)",
        columns=["implementation", "median ms", "min ms", "x F.conv2d", "x GEMM floor"],
    )
    for name in candidates:
        report.add_row(name, median_ms[name], min_ms[name], median_ms[name] / torch_ms, median_ms[name] / floor)
    for values, seconds in per_value:
        report.add_row(f"conv2d_naive, {values} output values (measured once)", 1e3 * seconds, 1e3 * seconds, float("nan"), float("nan"))
    report.add_row(
        "conv2d_naive, full size (extrapolated)",
        naive_full_ms,
        naive_full_ms,
        naive_full_ms / torch_ms,
        naive_full_ms / floor,
    )
    report.figures = {
        "im2col / F.conv2d (goal <= 2)": ours / torch_ms,
        "im2col / GEMM floor (goal <= 1.5)": ours / floor,
        "im2col / F.conv2d, fastest rounds": ours_min / torch_min,
        "im2col / GEMM floor, fastest rounds": ours_min / floor_min,
        "im2col / GEMM of the literal (T, 9C) @ (9C, NHW) shape": ours / median_ms["GEMM floor: (T, 9C) @ (9C, NHW)"],
        "naive (extrapolated) / im2col": naive_full_ms / ours,
        "F.conv2d ms": torch_ms,
        "im2col ms": ours,
        "GEMM floor ms": floor,
        "naive extrapolated s": naive_full_ms / 1e3,
        "naive us per output value": 1e6 * per_value[-1][1] / per_value[-1][0],
        "max |im2col - F.conv2d|": max_err,
    }
    report.notes = [
        f"medians over {rounds} interleaved rounds; GEMM floor = fastest layout ({floor_name})",
        f"1-minute load average of the machine: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} cores; other processes running at the same time slow every row); "
        f"niceness of this process: {os.nice(0)}",
        "naive time per output value: "
        + ", ".join(f"{1e6 * s / v:.1f} us at {v} values" for v, s in per_value)
        + f"; full size = {n * t * length} values",
        (
            f"medians: goal im2col <= 2x F.conv2d {'met' if ours <= 2 * torch_ms else 'NOT met'}, "
            f"goal im2col <= 1.5x GEMM floor {'met' if ours <= 1.5 * floor else 'NOT met'}; "
            f"fastest rounds: {'met' if ours_min <= 2 * torch_min else 'NOT met'} and "
            f"{'met' if ours_min <= 1.5 * floor_min else 'NOT met'}"
        ),
    ]
    return report


if __name__ == "__main__":
    benchmark_main("conv_speed", run)
