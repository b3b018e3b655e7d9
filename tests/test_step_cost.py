"""bench/step_cost.py: the per-row cost of a batched decode step and the gain it allows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.engine.slot_cache import SlotCache
from bench import step_cost


@pytest.mark.parametrize(
    ("c1", "s", "rows", "target"),
    [(6.4, 0.22, 4, 3.0), (2.4, 0.09, 4, 3.0), (5.0, 0.0, 8, 6.0), (1.0, 0.5, 2, 1.2)],
)
def test_a_step_adding_the_most_a_row_may_add_reaches_the_gain_exactly(c1, s, rows, target):
    most = step_cost.most_added_per_row(c1, s, rows, gain_at_least=target)
    assert step_cost.gain(c1, c1 + (rows - 1) * most, s, rows) == pytest.approx(target)
    # a little more per row falls short, a little less exceeds it
    assert step_cost.gain(c1, c1 + (rows - 1) * (most + 0.01), s, rows) < target
    assert step_cost.gain(c1, c1 + (rows - 1) * (most - 0.01), s, rows) > target


@pytest.mark.parametrize(("c1", "s", "rows", "limit"), [(6.4, 0.22, 4, 1.5), (2.4, 0.09, 4, 1.5), (5.0, 0.0, 8, 3.0)])
def test_a_step_adding_the_most_a_row_may_add_reaches_the_slowdown_exactly(c1, s, rows, limit):
    most = step_cost.most_added_per_row(c1, s, rows, slowdown_at_most=limit)
    assert step_cost.slowdown(c1, c1 + (rows - 1) * most, s, rows) == pytest.approx(limit)
    assert step_cost.slowdown(c1, c1 + (rows - 1) * (most + 0.01), s, rows) > limit


def test_gain_counts_tokens_per_worker_second_and_slowdown_the_wait_per_token():
    """One row per step at 10 ms + 1 ms sampling: 1 token / 11 ms. Four rows at 20 ms + 4 x 1 ms:
    4 tokens / 24 ms. Gain (4 / 24) / (1 / 11) = 44 / 24; each token waits 24 ms against 11."""
    assert step_cost.gain(10.0, 20.0, 1.0, 4) == pytest.approx(44 / 24)
    assert step_cost.slowdown(10.0, 20.0, 1.0, 4) == pytest.approx(24 / 11)


def test_ms_by_operator_takes_each_operator_types_median_run(tmp_path):
    """Three runs (ts and dur in microseconds); a node belongs to the run whose span holds it."""
    events = [
        {"cat": "Session", "name": "model_run", "ts": 1000, "dur": 900},
        {"cat": "Session", "name": "model_run", "ts": 3000, "dur": 900},
        {"cat": "Session", "name": "model_run", "ts": 5000, "dur": 9000},  # a run the host slowed down
        {"cat": "Node", "name": "a_kernel_time", "ts": 1100, "dur": 300, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "b_kernel_time", "ts": 1500, "dur": 100, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "c_kernel_time", "ts": 1700, "dur": 200, "args": {"op_name": "Add"}},
        {"cat": "Node", "name": "a_kernel_time", "ts": 3100, "dur": 500, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "c_kernel_time", "ts": 3600, "dur": 100, "args": {"op_name": "Add"}},
        {"cat": "Node", "name": "a_kernel_time", "ts": 5100, "dur": 8000, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "c_fence_before", "ts": 5200, "dur": 5000, "args": {"op_name": "Add"}},  # no kernel
        {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 99999},
    ]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(events))
    # MatMul per run 0.4, 0.5, 8.0 ms -> 0.5; Add per run 0.2, 0.1, 0 -> 0.1
    assert step_cost.ms_by_operator(profile) == pytest.approx({"MatMul": 0.5, "Add": 0.1})


def test_a_real_profile_of_decode_steps_fits_inside_its_runs(tiny_model_dir, tmp_path):
    """onnxruntime's own profile of in-place decode steps: every run's kernels, GroupQueryAttention
    among them, take less time than the runs that hold them."""
    from backend.engine.session import DecoderSession

    model = tiny_model_dir / "model.onnx"
    _, cache = DecoderSession(model).prefill([5, 6, 7, 8])
    profiled = DecoderSession(model, profile_prefix=str(tmp_path / "steps"))
    batch = SlotCache()
    batch.join(cache)
    for _ in range(6):
        batch.decode(profiled, np.array([9], dtype=np.int64))
    path = Path(profiled.session.end_profiling())
    events = json.loads(path.read_text())
    run_ms = [e["dur"] / 1000 for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    by_op = step_cost.ms_by_operator(path)
    assert len(run_ms) == 6
    assert "GroupQueryAttention" in by_op and "MatMulIntegerToFloat" in by_op
    assert 0 < sum(by_op.values()) < sum(run_ms) / len(run_ms)


def test_tiny_run_prints_both_tables(tiny_model_dir, capsys):
    assert step_cost.main(["--model", str(tiny_model_dir / "model.onnx"), "--rows", "2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    wall = rows["decode step, wall (ms)"].strip("| ").split(" | ")
    sampling = rows["sampling + log-probability, served defaults (ms)"].strip("| ").split(" | ")
    c1, c2, s = float(wall[1]), float(wall[2]), float(sampling[1])
    assert c1 > 0 and c2 > 0 and s > 0
    assert "GroupQueryAttention (profiled, ms)" in rows
    measured = [float(cell.rstrip("x")) for cell in rows["as measured"].strip("| ").split(" | ")[1:]]
    # from the printed, rounded values: tokens/s gain, then per-token latency against alone
    assert measured == pytest.approx([2 * (c1 + s) / (c2 + 2 * s), (c2 + 2 * s) / (c1 + s)], abs=0.03)
    assert "For a 3x gain it may add at most" in out and "at most 1.5x as slow as alone" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "1"], "--rows must be between 2 and 16, got 1"),
        (["--rows", "17"], "--rows must be between 2 and 16, got 17"),
        (["--target", "1"], "--target must be above 1, got 1"),
        (["--latency", "0.5"], "--latency must be above 1, got 0.5"),
        (["--model", "/no/such/model.onnx"], "--model /no/such/model.onnx is not a file"),
    ],
)
def test_bad_arguments_are_refused_naming_the_bound(argv, message, capsys):
    assert step_cost.main(argv) == 2
    assert message in capsys.readouterr().err
