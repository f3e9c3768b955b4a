"""The lm-eval backend: parity with stock hf, the exact tokens the model sees under every condition, and
the shared-context, token-budget path equal to the plain one."""

import json

import lm_eval
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager

from conftest import require_data
from lm_tasks import write_tasks
from sinkbench.errors import SinkbenchError
from sinkbench.harness.backend import BackendOptions, SinkbenchLM
from sinkbench.harness.cache import keyed_request_cache
from sinkbench.harness.ledger import RequestStats, SinkLedger
from sinkbench.harness.scoring import Batching, Request, plan_batches, plan_rows
from sinkbench.measure.attention import MaskEdit, attention_session
from sinkbench.measure.probe import SinkProbe

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
    """Records (input rows, offset of their first position) of every forward call of a model."""

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
    if args.get("prefix"):
        require_data()
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), batch_size=2, **args)
    stress = list(lm.sequences.stress)
    fixed = head + stress
    spy = InputSpy(lm.model)
    evaluate(lm, task_manager)
    spy.handle.remove()
    started = 0
    for rows, cached in spy.calls:
        for row in rows:
            if cached == 0 and stress and row == fixed[:-1]:
                continue  # the stress prefix itself, computed once and shared
            if cached == 0:
                sequence = row
            elif stress and cached == len(fixed) - 1:
                sequence = fixed[:-1] + row
            else:
                continue  # a generation step after the prompt
            started += 1
            assert sequence[: len(fixed)] == fixed, (name, sequence[:10])
            if name != "double":
                assert sequence[len(head) : len(head) + 1] != [BOS], "doubled <bos>"
            if "drop" in name:
                assert sequence[0] != BOS
    # every request type reached the model: cloze 4, choice 3 packed rows, rolling >= 2, generate 2 sequences
    assert started >= 11
    if stress:  # computed once, reused by every batch
        assert sum(rows == [fixed[:-1]] for rows, cached in spy.calls if cached == 0) == 1
    if fixed:
        assert set(lm.ledger.first_tokens) == {fixed[0]}
    else:
        assert BOS not in lm.ledger.first_tokens and len(lm.ledger.first_tokens) > 1


def _scored(lm, requests):
    results, stats = lm.scorer.score(requests)
    return results, stats


@pytest.mark.needs_data  # the stress prefix is cut from War and Peace
@pytest.mark.parametrize("extra", [{}, {"window": 4, "sinks": 1}, {"knockout": "1"}])
def test_shared_stress_prefix_gives_the_scores_of_a_full_pass(tiny_model_dir, extra):
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), prefix=10, batch_size=3, **extra)
    context, continuations = [20, 21, 22, 23], [[30], [31, 32], [33, 34, 35]]
    scores, _ = _scored(lm, [Request(None, context, c) for c in continuations])
    edit = MaskEdit.for_condition(lm.condition, lm.identity.n_layers)
    for (logprob, _), cont in zip(scores, continuations):
        sequence = torch.tensor([list(lm.sequences.fixed) + context + cont])
        with torch.no_grad(), attention_session(lm.model, edit=edit):
            full = torch.log_softmax(lm.model(sequence).logits.float(), -1)[0]
        expected = sum(full[len(sequence[0]) - len(cont) - 1 + i, t].item() for i, t in enumerate(cont))
        assert logprob == pytest.approx(expected, abs=1e-4)


# Every condition the suites run, plus the <bos> variants: packed contexts and token budgets must
# not change a single outcome (log-likelihoods to 1e-5, greedy flags and accuracy exactly).
SHARING_CONDITIONS = [{}, {"bos": "drop"}, {"bos": "double"}, {"bos": "replace:<eos>"}, {"prefix": 6},
                      {"bos": "drop", "prefix": 6}, {"knockout": "all"}, {"window": 5, "sinks": 2}]


@pytest.mark.parametrize("args", SHARING_CONDITIONS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "keep")
def test_shared_contexts_and_token_budgets_equal_the_plain_path(args, tiny_model_dir, task_manager):
    if args.get("prefix"):
        require_data()
    plain = SinkbenchLM(pretrained=str(tiny_model_dir), batch_size=1, share_contexts=False, **args)
    fast = SinkbenchLM(loaded=plain.loaded, condition=plain.condition,
                       options=BackendOptions.from_model_args(max_batch_tokens=64, **args))
    tasks = ["tiny_cloze", "tiny_choice", "tiny_rolling"]
    slow_result, fast_result = evaluate(plain, task_manager, tasks), evaluate(fast, task_manager, tasks)
    assert fast.scorer.counts.passes < plain.scorer.counts.passes  # work really was shared
    for task in tasks:
        for theirs, mine in zip(sorted(slow_result["samples"][task], key=lambda s: s["doc_id"]),
                                sorted(fast_result["samples"][task], key=lambda s: s["doc_id"])):
            for metric in ("acc", "acc_norm"):
                assert theirs.get(metric) == mine.get(metric), (task, metric)
            a, b = theirs["filtered_resps"], mine["filtered_resps"]
            if task == "tiny_rolling":
                assert b == pytest.approx(a, abs=1e-5)
            else:
                assert [r[1] for r in a] == [r[1] for r in b]
                assert [r[0] for r in b] == pytest.approx([r[0] for r in a], abs=1e-5)
    for key, entry in plain.ledger.entries.items():  # every request's sink statistics from its own queries
        other = fast.ledger.entries[key]
        torch.testing.assert_close(other.alpha, entry.alpha, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(other.first_k_mass, entry.first_k_mass, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(other.text_start, entry.text_start, atol=1e-6, rtol=1e-5)
        assert (other.n_tokens, other.first_token_id) == (entry.n_tokens, entry.first_token_id)


@pytest.mark.parametrize("case", ["one choice", "very different lengths", "empty context", "a context cut to fit"])
def test_shared_contexts_on_edge_cases(case, tiny_model_dir):
    contexts = {"one choice": [[20, 21, 22, 23, 24]], "very different lengths": [[20, 21, 22, 23]] * 3,
                "empty context": [[]] * 2, "a context cut to fit": [list(range(10, 60))] * 2}[case]
    continuations = {"one choice": [[30, 31]], "very different lengths": [[30], [31] * 12, [32, 33]],
                     "empty context": [[40, 41], [42]], "a context cut to fit": [[30, 31], [32]]}[case]
    max_length = 32 if case == "a context cut to fit" else None
    plain = SinkbenchLM(pretrained=str(tiny_model_dir), share_contexts=False, batch_size=1, max_length=max_length)
    fast = SinkbenchLM(loaded=plain.loaded, options=BackendOptions.from_model_args(max_length=max_length))
    requests = [Request(("t", 0, i), c, k) for i, (c, k) in enumerate(zip(contexts, continuations))]
    (expected, expected_stats), (got, got_stats) = _scored(plain, requests), _scored(fast, requests)
    assert [g for _, g in got] == [g for _, g in expected]
    assert [p for p, _ in got] == pytest.approx([p for p, _ in expected], abs=1e-5)
    for a, b in zip(expected_stats, got_stats):
        torch.testing.assert_close(b.alpha, a.alpha, atol=1e-6, rtol=1e-5)
    rows, _ = plan_rows(requests, fast.sequences, 0, True, 4)
    packed = case == "very different lengths"  # one choice: nothing to share; empty or cut contexts: not exact
    assert (len(rows) == 1) == packed or case == "one choice"


def test_token_budget_batches_stay_within_the_budget_and_cover_every_request_once(tiny_model_dir):
    lm = SinkbenchLM(pretrained=str(tiny_model_dir))
    generator = torch.Generator().manual_seed(0)
    requests = []
    for doc in range(40):
        context = torch.randint(4, 100, (int(torch.randint(1, 30, (1,), generator=generator)),), generator=generator).tolist()
        for choice in range(int(torch.randint(1, 5, (1,), generator=generator))):
            requests.append(Request(("t", doc, choice), context, [50 + choice] * (1 + choice)))
    rows, _ = plan_rows(requests, lm.sequences, 0, True, 4)
    for budget in (16, 40, 100, 1000):
        batches = plan_batches(rows, Batching(max_tokens=budget), vocab_size=128)
        members = [m.request for batch in batches for row in batch for m in row.members]
        assert sorted(members) == list(range(len(requests)))  # every request exactly once
        for batch in batches:
            width = max(len(row.inputs) for row in batch)
            assert len(batch) * width <= budget or len(batch) == 1  # a row longer than the budget goes alone
    capped = plan_batches(rows, Batching(max_tokens=10**6, max_rows=3), vocab_size=128)
    assert max(len(batch) for batch in capped) == 3
    by_logits = plan_batches(rows, Batching(max_tokens=10**6, max_logits=128 * 8), vocab_size=128)
    assert all(sum(row.n_scored for row in batch) <= 8 or len(batch) == 1 for batch in by_logits)


def test_left_truncation_keeps_bos(tiny_model_dir):
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), max_length=8)
    sequence, cut = lm.sequences.scored(list(range(20, 40)), [50, 51])
    assert sequence[0] == BOS and sequence[1] != BOS and len(sequence) == 9 and sequence[-2:] == [50, 51]
    assert cut
    lm.scorer.score([Request(None, list(range(20, 40)), [50, 51])])
    assert lm.scorer.counts.truncated == 1


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
    if args.get("prefix"):
        require_data()
    lm = SinkbenchLM(pretrained=str(tiny_model_dir), **args)
    context = "the cat sat on the red road . the dog"
    request = Instance("generate_until", {}, (context, {"until": ["."], "max_gen_toks": 4}), 0, ("tiny_gen", 7, 1))
    lm.generate_until([request], disable_tqdm=True)
    recorded = lm.ledger.entries[("tiny_gen", 7, 0)]
    prompt = list(lm.sequences.fixed) + lm.tok_encode(context)
    with torch.no_grad(), SinkProbe(lm.model, activations=False) as probe:
        lm.model(torch.tensor([prompt]))
        stats = probe.collect()
    own = stats.first_key[0, :, :, len(lm.sequences.fixed) :]
    torch.testing.assert_close(recorded.alpha, own.mean(-1), atol=1e-6, rtol=1e-5)
    assert recorded.n_tokens == len(prompt) and recorded.first_token_id == prompt[0]
    assert lm.get_model_info()["sinkbench"]["sink_metrics"]["tiny_gen"]["n_requests"] == 1


def test_request_cache_is_separate_per_model_and_condition(tiny_model_dir, task_manager, tmp_path):
    cache = str(tmp_path / "cache" / "lm")
    with keyed_request_cache():
        keep = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"], model_args=f"pretrained={tiny_model_dir}",
                        use_cache=cache)
        drop = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"],
                        model_args=f"pretrained={tiny_model_dir},bos=drop", use_cache=cache)
        assert len(list((tmp_path / "cache").glob("lm_rank0_*.db"))) == 2
        assert responses(keep, "tiny_cloze") != responses(drop, "tiny_cloze")
        again = evaluate("sinkbench", task_manager, tasks=["tiny_cloze"],
                         model_args=f"pretrained={tiny_model_dir},bos=drop", use_cache=cache)
    assert responses(again, "tiny_cloze") == responses(drop, "tiny_cloze")
    # lm-eval's own cache, keyed by request alone, would mix the two: refused with the way out
    with pytest.raises(SinkbenchError, match="sinkbench lm-eval"):
        evaluate("sinkbench", task_manager, tasks=["tiny_cloze"], model_args=f"pretrained={tiny_model_dir}",
                 use_cache=str(tmp_path / "plain" / "lm"))


def test_ledger_merges_ranks_without_double_counting():
    def entry(value):
        return RequestStats(torch.full((2, 3), value), torch.tensor([value, 1.0]), None, 10, BOS)

    rank0 = SinkLedger("bos=keep")
    rank0.add(("t", 0, 0), entry(0.9))
    rank0.add(("t", 1, 0), entry(0.1))
    rank1 = {("t", 2, 0): entry(0.5), ("t", 1, 0): entry(0.1)}  # doc 1 padded onto both ranks
    rank0.merge([rank0.entries, rank1])
    summary = rank0.summary()["t"]
    assert summary["n_requests"] == 3
    assert summary["alpha_mean"] == pytest.approx(0.5)
    assert summary["sink_rate"] == {"0.3": pytest.approx(2 / 3), "0.5": pytest.approx(1 / 3), "0.8": pytest.approx(1 / 3)}


def test_bad_model_arguments(tiny_model_dir):
    with pytest.raises(SinkbenchError, match="knockout"):
        SinkbenchLM(pretrained=str(tiny_model_dir), knockout="first")
    with pytest.raises(SinkbenchError, match="whole number"):
        SinkbenchLM(pretrained=str(tiny_model_dir), prefix="lots")
    with pytest.raises(SinkbenchError, match="unknown model argument.*windw"):
        SinkbenchLM(pretrained=str(tiny_model_dir), windw=4)
    with pytest.raises(SinkbenchError, match="max_batch_tokens must be a whole number >= 1"):
        BackendOptions.from_model_args(max_batch_tokens=0)
    assert BackendOptions.from_model_args(batch_size="auto").batching.max_rows is None
    assert BackendOptions.from_model_args(batch_size=8).batching.max_rows == 8
