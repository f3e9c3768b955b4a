"""Watch a sink form while a model trains: a tiny Llama trained from scratch with SinkbenchCallback, and the curve.

    python examples/track_checkpoints.py --steps 1500 --every 50 --threads 1 --out examples/track_checkpoints.png

Trains a 4-layer Llama (hidden 64) on War and Peace from sinkbench's data directory (generated filler
text without one), with a word-level tokenizer built here that puts `<bos>` in front of every
sequence. The callback probes a fixed held-out set every `--every` steps; the plot shows mean
attention to the first token and the sink rate at eps 0.3 / 0.5 / 0.8 against the step, with the
training loss below. Checkpoints saved by a Trainer (`checkpoint-<step>` folders) can be probed
afterwards the same way: `--checkpoints runs/x/checkpoint-*` draws their curve with sinkbench.api.probe.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: E402
from transformers import (AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast, Trainer,  # noqa: E402
                          TrainingArguments, default_data_collator)

from sinkbench.api import probe  # noqa: E402
from sinkbench.callback import SinkbenchCallback  # noqa: E402
from sinkbench.data.datadir import LONG_TEXT, book_text, resolve_data_dir  # noqa: E402
from sinkbench.data.texts import generated_texts  # noqa: E402
from sinkbench.errors import SinkbenchError  # noqa: E402

T_TRAIN = 64  # tokens per training sequence, <bos> included
T_PROBE = 32  # tokens per probe sequence
VOCABULARY = 2000  # most frequent words; the rest are <unk>


def corpus() -> tuple[str, str]:
    """The training text and its source: War and Peace if the data directory is there, else generated filler."""
    try:
        return book_text(LONG_TEXT, str(resolve_data_dir(None))), LONG_TEXT
    except SinkbenchError:
        return " ".join(generated_texts(400, 200)), "generated filler text"


def word_tokenizer(text: str) -> PreTrainedTokenizerFast:
    """Words and punctuation, the VOCABULARY most frequent ones, `<bos>` in front of every text."""
    words = Counter(re.findall(r"\w+|[^\w\s]", text.lower()))
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    vocab = {token: i for i, token in enumerate(specials + [w for w, _ in words.most_common(VOCABULARY)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


def split(text: str, tokenizer, n_probe: int) -> tuple[list[dict], list[str]]:
    """Training rows of T_TRAIN tokens from the first 90% of the text; probe passages from the last 10%."""
    cut = int(len(text) * 0.9)
    ids = tokenizer(text[:cut].lower(), add_special_tokens=False)["input_ids"]
    body = T_TRAIN - 1
    rows = []
    for start in range(0, len(ids) - body, body):
        row = torch.tensor([tokenizer.bos_token_id] + ids[start : start + body])
        rows.append({"input_ids": row, "attention_mask": torch.ones_like(row), "labels": row})
    held_out = text[cut:].lower()
    probe_texts = [held_out[i * 1000 : (i + 1) * 1000] for i in range(n_probe * 2)]
    return rows, probe_texts


def train(args) -> list[dict]:
    text, source = corpus()
    tokenizer = word_tokenizer(text)
    rows, probe_texts = split(text, tokenizer, n_probe=args.max_tokens // T_PROBE)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    training = TrainingArguments(output_dir=str(args.work), max_steps=args.steps, per_device_train_batch_size=16,
                                 learning_rate=3e-3, warmup_steps=args.steps // 20, logging_steps=args.every,
                                 report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=default_data_collator,
                      processing_class=tokenizer)
    callback = SinkbenchCallback(trainer, every=args.every, texts=probe_texts, T=T_PROBE, max_tokens=args.max_tokens)
    trainer.add_callback(callback)
    print(f"training on {source}: {len(rows)} rows of {T_TRAIN} tokens, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters; probe set {len(callback.texts)} x {T_PROBE} = {callback.tokens_per_call} tokens per call")
    trainer.train()
    seconds = [entry["sink/probe_seconds"] for entry in callback.history]
    print(f"probe: {len(seconds)} calls, {sum(seconds) / len(seconds):.3f} s per call on average")
    losses = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
    return [{**entry, "loss": losses.get(entry["step"])} for entry in callback.history]


def checkpoints(folders: list[Path], max_tokens: int) -> list[dict]:
    """The same metrics for saved checkpoints (`checkpoint-<step>` folders), with sinkbench.api.probe."""
    points = []
    for folder in sorted(folders, key=lambda f: int(re.findall(r"\d+", f.name)[-1])):
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        profile = probe(model, tokenizer, T=T_PROBE, n=max_tokens // T_PROBE)
        points.append({"step": int(re.findall(r"\d+", folder.name)[-1]), "sink/alpha_mean": profile.alpha_mean,
                       **{f"sink/rate_{eps:g}": rate for eps, rate in profile.sink_rate.items()}, "loss": None})
    return points


def plot(points: list[dict], path: Path, title: str) -> None:
    steps = [p["step"] for p in points]
    with_loss = any(p["loss"] is not None for p in points)
    fig, axes = plt.subplots(2 if with_loss else 1, 1, figsize=(7, 6 if with_loss else 3.6), sharex=True, squeeze=False)
    top = axes[0][0]
    top.plot(steps, [p["sink/alpha_mean"] for p in points], "k-o", markersize=3, label="mean α (attention to token 0)")
    for eps, style in (("0.3", "C0--"), ("0.5", "C1--"), ("0.8", "C3--")):
        top.plot(steps, [p[f"sink/rate_{eps}"] for p in points], style, label=f"sink rate ε={eps}")
    top.set_ylim(0, 1)
    top.set_ylabel("share")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    if with_loss:
        bottom = axes[1][0]
        logged = [(p["step"], p["loss"]) for p in points if p["loss"] is not None]
        bottom.plot(*zip(*logged), "C2-o", markersize=3)
        bottom.set_ylabel("training loss")
    axes[-1][0].set_xlabel("step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=50, help="probe every N optimizer steps")
    parser.add_argument("--max-tokens", type=int, default=256, help="the probe's budget: tokens per call")
    parser.add_argument("--checkpoints", type=Path, nargs="*", help="probe these checkpoint folders instead of training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (one is fastest on a busy machine)")
    parser.add_argument("--work", type=Path, default=Path("runs/track-checkpoints"), help="the Trainer's output folder")
    parser.add_argument("--out", type=Path, default=Path("runs/track-checkpoints/sink_curve.png"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    if args.checkpoints:
        points, title = checkpoints(args.checkpoints, args.max_tokens), "sink metrics of saved checkpoints"
    else:
        points, title = train(args), "a tiny Llama (4 layers x 4 heads) trained from scratch"
    for p in points:
        print(f"step {p['step']:5d}  mean alpha {p['sink/alpha_mean']:.3f}  sink rate eps=0.3 {p['sink/rate_0.3']:.3f}"
              f"  eps=0.8 {p['sink/rate_0.8']:.3f}" + (f"  loss {p['loss']:.3f}" if p["loss"] is not None else ""))
    plot(points, args.out, title)
    print(f"wrote {args.out} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
