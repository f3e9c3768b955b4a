"""What a run plans before it computes: <bos> dependence under stress at the longest prefix the model takes,
and the estimate it gives before it starts."""

from types import SimpleNamespace

from conftest import make_model
from sinkbench.grid.conditions import BOS_DROP_PREFIX, PREFIX, Condition
from sinkbench.grid.suite import SUITES, GridCell, ReferenceRun
from sinkbench.run.plan import first_estimate, fitting_prefix, linear_weights


def _baseline(longest: int) -> SimpleNamespace:
    """A baseline condition whose sweep tasks' longest sequence is `longest` tokens (all fitting_prefix reads)."""
    return SimpleNamespace(sinks={t: SimpleNamespace(max_tokens=longest)
                                  for t in ("sinkbench_lambada_quick", "sinkbench_arc_easy_quick")})


def test_bos_dropped_stress_takes_the_longest_prefix_that_fits():
    suite = SUITES["quick"]  # prefixes 256, 1024, 4096
    cell = next(c for c in suite.grid() if c.role == BOS_DROP_PREFIX)
    assert cell.condition.prefix_length == 4096
    # 4096 + a 200-token question exceeds a 2048-token context; 1024 + 200 fits.
    fitted = fitting_prefix(cell, suite, max_context=2048, head=0, baseline=_baseline(200))
    assert fitted.condition == Condition(bos="drop", prefix_length=1024) and fitted.tasks == cell.tasks
    assert fitted.role == BOS_DROP_PREFIX and fitted.limit == cell.limit
    # A context that takes 4096: the cell as it is; one too short for any prefix: as it is (skipped, saying so).
    assert fitting_prefix(cell, suite, 8192, 0, _baseline(200)) is cell
    assert fitting_prefix(cell, suite, 300, 0, _baseline(200)) is cell
    # Only that role moves: a prefix cell beyond the context stays (it is skipped, as the sweep says).
    prefix = GridCell(Condition(prefix_length=4096), cell.tasks, PREFIX, cell.limit)
    assert fitting_prefix(prefix, suite, 2048, 0, _baseline(200)) is prefix


def test_the_estimate_before_a_run_scales_the_reference_by_matrix_rate_and_size():
    model = make_model("llama")
    weights = linear_weights(model)
    head = model.get_output_embeddings().weight.numel()
    # By hand: the tiny llama's linear layers are 2 x (q 64x64, k 64x32, v 64x32, o 64x64, gate/up 64x128, down 128x64).
    assert weights == 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128) and head == 128 * 64
    reference = ReferenceRun("ref", seconds=600.0, matrix_gflops=400.0, linear_weights=weights * 2)
    suite = SimpleNamespace(name="quick", reference=reference)
    # Half the weights, half the machine's rate: the same 600 s = 10 min.
    said = first_estimate(suite, model, rate=200e9, custom=False)
    assert said.startswith("this machine: fp32 matrix products at 200 GFLOP/s; the quick suite should take about 10 min")
    assert "(scaled from ref: 10.0 min at 400 GFLOP/s)" in said
    assert first_estimate(suite, model, rate=200e9, custom=True) == "this machine: fp32 matrix products at 200 GFLOP/s"
    assert first_estimate(SimpleNamespace(name="x", reference=None), model, 1e9, False).endswith("at 1 GFLOP/s")
