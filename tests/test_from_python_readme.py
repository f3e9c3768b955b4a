"""The README's "From Python" examples run as written, on a tiny model standing for the reader's."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import Trainer, TrainingArguments

from conftest import make_model, make_tokenizer
from sinkbench.grid.suite import ProfilePlan

README = Path(__file__).resolve().parents[1] / "README.md"


def snippets() -> list[str]:
    section = README.read_text().split("## From Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_api_and_the_callback_examples():
    found = snippets()
    assert len(found) == 2 and "evaluate(" in found[0] and "SinkbenchCallback(" in found[1]


@pytest.mark.slow
@pytest.mark.needs_data  # the snippet evaluates PIQA
def test_the_readme_examples_run(monkeypatch, tmp_path, capsys):
    import sinkbench.grid.suite as suite

    # The suite's profile, shrunk (100 texts and a 4k sweep are for real models); the snippets are unchanged.
    small = ProfilePlan(T=16, n=4, sweep_lengths=(16,), sweep_texts=(2,), overmixing_sequences=2)
    monkeypatch.setitem(suite.SUITES, "quick", replace(suite.SUITES["quick"], profile=small))
    model, tokenizer = make_model("llama"), make_tokenizer()
    ids = torch.randint(4, 100, (8, 24), generator=torch.Generator().manual_seed(0))
    train_data = [{"input_ids": row, "attention_mask": torch.ones_like(row), "labels": row} for row in ids]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4, report_to=[],
                             use_cpu=True, save_strategy="no", disable_tqdm=True)
    namespace = {"model": model, "tokenizer": tokenizer, "Trainer": Trainer, "args": args, "train_data": train_data}
    api, callback = snippets()
    exec(api, namespace)
    assert namespace["profile"].n_sequences == 100 and namespace["record"].model.source == "memory"
    assert namespace["record"].summary["bos_dependence"].value is not None
    assert capsys.readouterr().out.strip().endswith("memory")
    exec(callback, namespace)
    logged = [e["step"] for e in namespace["trainer"].state.log_history if "sink/alpha_mean" in e]
    assert logged == [0, 3]  # the start and the last step (every=100 is beyond 3 steps)
