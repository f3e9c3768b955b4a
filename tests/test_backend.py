"""The lm-eval backend: parity with stock hf, the exact tokens the model sees under every condition."""

import json

import lm_eval
import pytest
import torch
from lm_eval.tasks import TaskManager

from lm_tasks import write_tasks
from sinkbench.measure.attention import attention_session
from sinkbench.harness.backend import SinkbenchLM
from sinkbench.grid.conditions import Condition, check_sequence_start
from sinkbench.errors import SinkbenchError
from sinkbench.harness.ledger import RequestSinks, SinkLedger

TASKS = ["tiny_cloze", "tiny_choice", "tiny_rolling", "tiny_generate"]
BOS, EOS = 2, 3


@pytest.fixture
def task_manager(tmp_path):
    return TaskManager(include_path=str(write_tasks(tmp_path / "tasks")), include_defaults=False)


def evaluate(model, task_manager, tasks=TASKS, **kwargs):
    kwargs.setdefault("batch_size", 2)
    return lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=task_manager, device="cpu",
                                   log_samples=True, **kwargs)


def responses(result, task):
    return [sample["filtered_resps"] for sample in sorted(result["samples"][task], key=lambda s: s["doc_id"])]


def test_keep_without_stress_equals_stock_hf(tiny_model_dir, task_manager):
    stock = evaluate("hf", task_manager, model_args=f"pretrained={tiny_model_dir}")
    ours = evaluate("sinkbench", task_manager, model_args=f"pretrained={tiny_model_dir}")
    for task in ["tiny_cloze", "tiny_choice", "tiny_generate"]:
        for metric, value in stock["results"][task].items():
            if metric.startswith(("acc", "exact_match", "perplexity")) and "stderr" not in metric:
                assert ours["results"][task][metric] == pytest.approx(value, rel=1e-6), (task, metric)
    for task in ["tiny_cloze", "tiny_choice"]:
        for theirs, mine in zip(responses(stock, task), responses(ours, task)):
            assert [r[1] for r in theirs] == [r[1] for r in mine]  # greedy flags identical
            assert [r[0] for r in mine] == pytest.approx([r[0] for r in theirs], abs=1e-5)
    assert responses(stock, "tiny_generate") == responses(ours, "tiny_generate")


class InputSpy:
    """Records (input rows, cached length) of every forward call of a model."""

    def __init__(self, model):
        self.calls = []
        self.handle = model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        positions = kwargs.get("position_ids")
        if cache is not None:
            offset = cache.get_seq_length()
        else:  # a batch after the shared stress prefix starts at its length
            offset = int(positions[0, 0]) if positions is not None else 0
        self.calls.append(([row.tolist() for row in ids], offset))


CONDITIONS = {
    "keep": ([BOS], {}),
    "drop": ([], {"bos": "drop"}),
    "double": ([BOS, BOS], {"bos": "double"}),
    "replace": ([EOS], {"bos": "replace:<eos>"}),
    "keep+prefix": ([BOS], {"prefix": 6}),
    "drop+prefix": ([], {"bos": "drop", "prefix": 6}),
}


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_every_sequence_starts_as_the_condition_says(name, tiny_model_dir, task_manager):
    head, args = CONDITIONS[name]
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), batch_size=2, **args)
    fixed = head + lm.prefix_ids
    spy = InputSpy(lm.model)
    evaluate(lm, task_manager)
    spy.handle.remove()
    started = 0
    for rows, cached in spy.calls:
        for row in rows:
            if cached == 0 and lm.prefix_ids and row == fixed[:-1]:
                continue  # the stress prefix itself, computed once and shared
            if cached == 0:
                sequence = row
            elif lm.prefix_ids and cached == len(fixed) - 1:
                sequence = fixed[:-1] + row
            else:
                continue  # a generation step after the prompt
            started += 1
            assert sequence[: len(fixed)] == fixed, (name, sequence[:10])
            if name != "double":
                assert sequence[len(head) : len(head) + 1] != [BOS], "doubled <bos>"
            if "drop" in name:
                assert sequence[0] != BOS
    # every request type reached the model: cloze 4, choice 8, rolling >= 2, generate 2 sequences
    assert started >= 16
    if lm.prefix_ids:  # computed once, reused by every batch
        assert sum(rows == [fixed[:-1]] for rows, cached in spy.calls if cached == 0) == 1
    if fixed:
        assert set(lm.ledger.first_tokens) == {fixed[0]}
    else:
        assert BOS not in lm.ledger.first_tokens and len(lm.ledger.first_tokens) > 1


@pytest.mark.parametrize("extra", [{}, {"window": 4, "sinks": 1}, {"knockout": "1"}])
def test_shared_stress_prefix_gives_the_scores_of_a_full_pass(tiny_model_dir, extra):
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), prefix=10, batch_size=3, **extra)
    context, continuations = [20, 21, 22, 23], [[30], [31, 32], [33, 34, 35]]
    from sinkbench.harness.backend import ScoreItem

    scores = lm._score([ScoreItem(None, context, c) for c in continuations], disable_tqdm=True)
    for (logprob, _), cont in zip(scores, continuations):
        sequence = torch.tensor([lm.fixed + context + cont])
        with torch.no_grad(), attention_session(lm.model, edit=lm.probe.edit):
            full = torch.log_softmax(lm.model(sequence).logits.float(), -1)[0]
        expected = sum(full[len(sequence[0]) - len(cont) - 1 + i, t].item() for i, t in enumerate(cont))
        assert logprob == pytest.approx(expected, abs=1e-4)


def test_left_truncation_keeps_bos(tiny_model_dir):
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), max_length=8)
    sequence = lm._full_sequence(list(range(20, 40)), [50, 51])
    assert sequence[0] == BOS and sequence[1] != BOS and len(sequence) == 9 and sequence[-2:] == [50, 51]
    assert lm.truncated_requests == 1


def test_sequence_start_mismatch_is_an_error():
    keep = Condition.from_args(bos="keep")
    with pytest.raises(SinkbenchError, match="second <bos>"):
        check_sequence_start([BOS, BOS, 9], [BOS], [], keep, BOS)
    with pytest.raises(SinkbenchError, match="expected"):
        check_sequence_start([9, 9], [BOS], [], keep, BOS)
    with pytest.raises(SinkbenchError, match="bos=drop"):
        check_sequence_start([BOS, 9], [], [], Condition.from_args(bos="drop"), BOS)


def test_sink_metrics_reach_results_and_sidecar(tiny_model_dir, task_manager, tmp_path):
    sidecar = tmp_path / "sinks.jsonl"
    result = evaluate("sinkbench", task_manager, tasks=["tiny_cloze", "tiny_choice"],
                      model_args=f"pretrained={tiny_model_dir},sidecar={sidecar}")
    info = result["config"]["sinkbench"]
    assert info["condition"] == "bos=keep"
    assert info["sink_metrics"]["tiny_cloze"]["n_requests"] == 4
    assert info["sink_metrics"]["tiny_choice"]["n_requests"] == 8  # 3 + 2 + 3 options
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    keys = {(r["task"], r["doc_id"], r["request_index"]) for r in rows}
    assert len(rows) == len(keys) == 12
    assert ("tiny_choice", 0, 2) in keys
    alpha = info["sink_metrics"]["tiny_cloze"]["alpha_mean"]
    assert 0 < alpha < 1
    assert alpha == pytest.approx(sum(r["alpha_mean"] for r in rows if r["task"] == "tiny_cloze") / 4, rel=1e-5)


@pytest.mark.parametrize("args", [{}, {"bos": "drop", "prefix": 6}])
def test_generation_sink_metrics_come_from_the_prompt_pass(tiny_model_dir, args):
    from lm_eval.api.instance import Instance

    from sinkbench.measure.probe import SinkProbe

    lm = SinkbenchLM(pretrained=str(tiny_model_dir), **args)
    context = "the cat sat on the red road . the dog"
    request = Instance("generate_until", {}, (context, {"until": ["."], "max_gen_toks": 4}), 0, ("tiny_gen", 7, 1))
    lm.generate_until([request], disable_tqdm=True)
    recorded = lm.ledger.entries[("tiny_gen", 7, 0)]
    prompt = lm.fixed + lm.tok_encode(context)
    with torch.no_grad(), SinkProbe(lm.model, activations=False) as probe:
        lm.model(torch.tensor([prompt]))
        stats = probe.collect()
    own = stats.first_key[0, :, :, len(lm.fixed) :]
    torch.testing.assert_close(recorded.alpha, own.mean(-1), atol=1e-6, rtol=1e-5)
    assert recorded.n_tokens == len(prompt) and recorded.first_token_id == prompt[0]
    assert lm.get_model_info()["sinkbench"]["sink_metrics"]["tiny_gen"]["n_requests"] == 1


def test_request_cache_is_separate_per_model_and_condition(tiny_model_dir, task_manager, tmp_path):
    cache = str(tmp_path / "cache" / "lm")
    keep = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"], model_args=f"pretrained={tiny_model_dir}", use_cache=cache)
    drop = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"], model_args=f"pretrained={tiny_model_dir},bos=drop",
                    use_cache=cache)
    assert len(list((tmp_path / "cache").glob("lm_rank0_*.db"))) == 2
    assert responses(keep, "tiny_cloze") != responses(drop, "tiny_cloze")
    again = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"], model_args=f"pretrained={tiny_model_dir},bos=drop",
                     use_cache=cache)
    assert responses(again, "tiny_cloze") == responses(drop, "tiny_cloze")


def test_ledger_merges_ranks_without_double_counting():
    def entry(value):
        return RequestSinks(torch.full((2, 3), value), torch.tensor([value, 1.0]), 10, BOS)

    rank0 = SinkLedger("bos=keep")
    rank0.add(("t", 0, 0), entry(0.9))
    rank0.add(("t", 1, 0), entry(0.1))
    rank1 = {("t", 2, 0): entry(0.5), ("t", 1, 0): entry(0.1)}  # doc 1 padded onto both ranks
    rank0.merge([rank0.entries, rank1])
    summary = rank0.summary()["t"]
    assert summary["n_requests"] == 3
    assert summary["alpha_mean"] == pytest.approx(0.5)
    assert summary["sink_rate"] == {"0.3": pytest.approx(2 / 3), "0.5": pytest.approx(1 / 3), "0.8": pytest.approx(1 / 3)}


def test_bad_condition_arguments(tiny_model_dir):
    with pytest.raises(SinkbenchError, match="knockout"):
        SinkbenchLM(pretrained=str(tiny_model_dir), knockout="first")
    with pytest.raises(SinkbenchError, match="whole number"):
        SinkbenchLM(pretrained=str(tiny_model_dir), prefix="lots")
