"""SinkbenchCallback: a tiny Llama trained with transformers' Trainer logs sink metrics every N steps, within its budget."""

import random

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

from conftest import WORDS, make_model, make_tokenizer
from sinkbench.callback import SinkbenchCallback
from sinkbench.errors import SinkbenchError

STEPS, EVERY, T, BUDGET = 7, 2, 16, 64  # 7 steps: the last one is not a multiple of EVERY
SINK_KEYS = {"sink/alpha_mean", "sink/rate_0.3", "sink/rate_0.5", "sink/rate_0.8", "sink/mass_first_4"}


def texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS[:60]) for _ in range(words)) for _ in range(n)]


class Integration(TrainerCallback):
    """Stands for TensorBoard or W&B: what reaches a callback's on_log is what they write."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append((state.global_step, dict(logs)))


def trainer_for(tmp_path, steps: int = STEPS) -> tuple[Trainer, Integration]:
    model, tokenizer = make_model("llama"), make_tokenizer()
    ids = torch.randint(4, 100, (16, 24), generator=torch.Generator().manual_seed(0))
    rows = [{"input_ids": row, "attention_mask": torch.ones_like(row), "labels": row} for row in ids]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4,
                             learning_rate=1e-2, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no",
                             disable_tqdm=True, seed=0)
    integration = Integration()
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=default_data_collator,
                      processing_class=tokenizer, callbacks=[integration])
    return trainer, integration


def probe_tokens(model) -> list[int]:
    """Tokens of every forward pass in eval mode (the probe's; training runs in train mode)."""
    fed = []
    model.register_forward_pre_hook(lambda module, args, kwargs: fed.append(0 if module.training else
                                                                             kwargs.get("input_ids", args[0] if args else None).numel()),
                                    with_kwargs=True)
    return fed


def test_a_training_run_logs_sink_metrics_every_n_steps_and_at_the_end_within_the_budget(tmp_path):
    trainer, integration = trainer_for(tmp_path)
    callback = SinkbenchCallback(trainer, every=EVERY, texts=texts(12, 30), T=T, max_tokens=BUDGET)
    trainer.add_callback(callback)
    fed = probe_tokens(trainer.model)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "sink/alpha_mean" in entry]
    assert [entry["step"] for entry in logged] == [0, 2, 4, 6, 7]  # the start, every 2 steps, the last step
    for entry in logged:
        assert SINK_KEYS <= set(entry)
        for key in SINK_KEYS:
            assert isinstance(entry[key], float) and 0.0 <= entry[key] <= 1.0, (key, entry[key])
        assert entry["sink/probe_seconds"] > 0
    assert [step for step, logs in integration.seen if "sink/alpha_mean" in logs] == [0, 2, 4, 6, 7]
    # The budget: 64 tokens / 16 = 4 sequences of 16 tokens, one pass each call, nothing more.
    assert callback.tokens_per_call == 64 and len(callback.texts) == 4
    probe_passes = [n for n in fed if n]
    assert sum(probe_passes) == 5 * callback.tokens_per_call, probe_passes
    # Training moved the weights, and the probe saw it: the curve is not flat.
    assert len({entry["sink/alpha_mean"] for entry in logged}) > 1
    assert trainer.model.training  # handed back in train mode after each probe


def test_the_callback_does_not_change_training(tmp_path):
    """Same seed, with and without the callback: bitwise the same weights and losses (the probe draws no
    random numbers and leaves the model as it was)."""
    plain, _ = trainer_for(tmp_path / "a")
    plain.train()
    probed, _ = trainer_for(tmp_path / "b")
    probed.add_callback(SinkbenchCallback(probed, every=EVERY, texts=texts(12, 30), T=T, max_tokens=BUDGET))
    probed.train()
    for (name, a), b in zip(plain.model.named_parameters(), probed.model.parameters()):
        assert torch.equal(a, b), name
    losses = [[e["loss"] for e in t.state.log_history if "loss" in e] for t in (plain, probed)]
    assert losses[0] == losses[1] and len(losses[0]) == STEPS


@pytest.mark.parametrize("kwargs, message", [
    (dict(every=0), "every must be a whole number of steps >= 1"),
    (dict(every=2, T=32, max_tokens=16), "max_tokens=16 is less than one sequence of T=32 tokens"),
    (dict(every=2, texts=["the cat"], T=16), "none of the 1 texts gives T=16 tokens"),
    (dict(every=2, texts="the cat sat"), "texts must be a list of strings"),
])
def test_bad_input_gets_one_line_naming_the_fix(tmp_path, kwargs, message):
    trainer, _ = trainer_for(tmp_path)
    with pytest.raises(SinkbenchError) as caught:
        SinkbenchCallback(trainer, **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_callback_needs_the_trainer():
    with pytest.raises(SinkbenchError, match="needs the Trainer itself"):
        SinkbenchCallback(None, every=2)
