"""A model's sink profile over a set of texts: run the probe, reduce, render as text, JSON and a heatmap."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sinkbench.measure import metrics
from sinkbench.grid.conditions import Condition, check_sequence_start
from sinkbench.errors import SinkbenchError
from sinkbench.measure.models import LoadedModel
from sinkbench.measure.probe import SinkProbe


@dataclass(frozen=True)
class ProbeConfig:
    T: int = 64  # tokens per sequence, <bos> included (Gu et al. use 64)
    n: int = 100  # sequences (Gu et al. use 100)
    bos: str = "keep"
    eps: tuple[float, ...] = metrics.DEFAULT_EPS  # 0.3 (Gu et al.) saturates on modern models; 0.8 is Barbero et al.'s
    first_k: int = 4  # StreamingLLM keeps the first 4 tokens as sinks
    batch_size: int = 8
    overmixing_sequences: int = 8  # two extra forward passes each, so keep it small
    seed: int = 0


def _head(loaded: LoadedModel, config: ProbeConfig) -> tuple[Condition, list[int]]:
    condition = Condition.from_args(bos=config.bos)
    return condition, condition.head_tokens(loaded.tokenizer, loaded.identity.adds_bos)


def encode_texts(loaded: LoadedModel, texts: list[str], config: ProbeConfig) -> list[list[int]]:
    """Token ids the model will see: the condition's head, then the text, cut to T tokens."""
    condition, head = _head(loaded, config)
    max_context = loaded.identity.max_context
    if max_context is not None and config.T > max_context:
        raise SinkbenchError(f"T={config.T} is larger than the model's context of {max_context} tokens")
    if config.T <= len(head) + 1:
        raise SinkbenchError(f"T={config.T} leaves no room for text after {len(head)} head token(s)")
    sequences = []
    for index, text in enumerate(texts):
        if not text or not text.strip():
            raise SinkbenchError(f"text {index + 1} is empty")
        ids = (head + loaded.tokenizer(text, add_special_tokens=False)["input_ids"])[: config.T]
        check_sequence_start(ids, head, [], condition, loaded.tokenizer.bos_token_id)
        sequences.append(ids)
    return sequences


def _batches(sequences: list[list[int]], batch_size: int):
    """Batches of equal-length sequences (no padding, so every statistic is exact)."""
    by_length: dict[int, list[int]] = {}
    for index, ids in enumerate(sequences):
        by_length.setdefault(len(ids), []).append(index)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            yield chunk, torch.tensor([sequences[i] for i in chunk])


@torch.no_grad()
def _overmixing_one(loaded: LoadedModel, texts: list[list[int]], head: list[int], config: ProbeConfig) -> dict:
    """Swap one token in the middle of each text; per layer, how far the later positions move."""
    generator = torch.Generator().manual_seed(config.seed)
    special = set(loaded.tokenizer.all_special_ids)
    movement, spread = [], []
    for text in texts:
        ids = (head + text)[: config.T]
        if len(ids) - len(head) < 4:
            continue
        position = len(head) + (len(ids) - len(head)) // 2
        replacement = ids[position]
        while replacement == ids[position] or replacement in special:
            replacement = int(torch.randint(len(loaded.tokenizer), (1,), generator=generator))
        original = torch.tensor([ids])
        perturbed = original.clone()
        perturbed[0, position] = replacement
        h_ref = torch.stack(loaded.model(original, output_hidden_states=True).hidden_states)[:, 0]  # (L+1, T, D)
        h_new = torch.stack(loaded.model(perturbed, output_hidden_states=True).hidden_states)[:, 0]
        movement.append(metrics.overmixing(h_ref, h_new, position))
        spread.append(metrics.representation_spread(h_ref))
    if not movement:
        return {"n_sequences": 0, "relative_change_by_layer": None, "representation_spread_by_layer": None}
    return {
        "n_sequences": len(movement),
        "relative_change_by_layer": torch.stack(movement).mean(0).tolist(),
        "representation_spread_by_layer": torch.stack(spread).mean(0).tolist(),
    }


def _overmixing(loaded: LoadedModel, sequences: list[list[int]], config: ProbeConfig, head_len: int) -> dict:
    """Barbero et al.'s experiment on the same texts, with <bos> in front and without, whatever --bos is."""
    texts = [ids[head_len:] for ids in sequences[: config.overmixing_sequences]]
    bos = loaded.tokenizer.bos_token_id
    result = {"perturbed_position": "middle of the text", "without_bos": _overmixing_one(loaded, texts, [], config)}
    result["with_bos"] = _overmixing_one(loaded, texts, [bos], config) if bos is not None else None
    return result


@torch.no_grad()
def run_probe(loaded: LoadedModel, texts: list[str], config: ProbeConfig, progress: bool = True) -> dict:
    """Sink profile of `loaded` over the first `config.n` texts."""
    texts = texts[: config.n]
    if not texts:
        raise SinkbenchError("no texts to probe")
    sequences = encode_texts(loaded, texts, config)
    n = len(sequences)
    alphas = [None] * n  # (L, H) per sequence
    first_k = [None] * n  # (L, H, K)
    massive_ratio, massive_pos, value_ratio, learned = [None] * n, [None] * n, [None] * n, [None] * n
    with SinkProbe(loaded.model, first_k=config.first_k) as probe:
        bar = tqdm(total=n, desc="probe", unit="seq", disable=not progress)
        for indices, batch in _batches(sequences, config.batch_size):
            loaded.model(batch, logits_to_keep=1, use_cache=False)  # the full vocabulary at every position is GBs
            stats = probe.collect()
            alpha_batch = metrics.alpha(stats.first_key)  # (B, L, H)
            mass_batch = metrics.first_k_mass(stats.first_k_mass)  # (B, L, H, K)
            for row, index in enumerate(indices):
                alphas[index], first_k[index] = alpha_batch[row], mass_batch[row]
                massive_ratio[index], massive_pos[index] = stats.massive_ratio[row], stats.massive_position[row]
                value_ratio[index] = stats.value_norm_ratio[row].mean(-1)
                if stats.learned_sink is not None:
                    learned[index] = stats.learned_sink[row].mean(-1).mean(-1)
            bar.update(len(indices))
        bar.close()
    alpha_all = torch.stack(alphas)  # (N, L, H)
    mean_alpha = alpha_all.mean(0)  # (L, H)
    positions = torch.stack(massive_pos)  # (N, L)
    head_len = len(_head(loaded, config)[1])
    first_tokens = Counter(ids[0] for ids in sequences)
    return {
        "model": loaded.identity.to_dict(),
        "config": asdict(config),
        "n_sequences": n,
        "mean_tokens": sum(map(len, sequences)) / n,
        "first_tokens": [
            {"id": tid, "token": loaded.tokenizer.decode([tid]), "count": count}
            for tid, count in first_tokens.most_common(5)
        ],
        "sink_rate": metrics.sink_rates(alpha_all, config.eps),
        "alpha_mean": mean_alpha.mean().item(),
        "alpha_by_layer": mean_alpha.mean(-1).tolist(),
        "alpha_by_head": mean_alpha.tolist(),
        "first_k_mass": torch.stack(first_k).mean(dim=(0, 1, 2)).tolist(),
        "strongest_heads": [
            {"layer": l, "head": h, "alpha": a} for l, h, a in metrics.strongest_heads(mean_alpha, top=5)
        ],
        "massive_activations": {
            "ratio_by_layer": torch.stack(massive_ratio).mean(0).tolist(),
            "top_position_by_layer": torch.mode(positions, dim=0).values.tolist(),
            "fraction_at_first_token_by_layer": (positions == 0).float().mean(0).tolist(),
        },
        "value_norm_ratio_by_layer": torch.stack(value_ratio).mean(0).tolist(),
        "learned_sink_mass_by_layer": torch.stack(learned).mean(0).tolist() if learned[0] is not None else None,
        "overmixing": _overmixing(loaded, sequences, config, head_len),
    }


def generated_texts(n: int, n_words: int, seed: int = 0) -> list[str]:
    """Plain English paragraphs made from sinkbench's own filler sentences, for runs without a data directory."""
    import random

    from sinkbench.data.synthetic import FILLER

    rng = random.Random(f"profile-{seed}")
    texts = []
    for _ in range(n):
        sentences, words = [], 0
        while words < n_words:
            sentence = rng.choice(FILLER)
            sentences.append(sentence)
            words += len(sentence.split())
        texts.append(" ".join(sentences))
    return texts


def long_texts(n: int, n_chars: int, data_dir) -> tuple[list[str], str]:
    """n consecutive passages of n_chars characters from the middle of War and Peace, or generated text."""
    from sinkbench.data.datadir import LONG_TEXT, book_text

    if data_dir is None:
        return generated_texts(n, n_chars // 5), "generated filler text (no data directory)"
    text = book_text(LONG_TEXT, str(data_dir))
    start = len(text) // 2
    return [text[start + i * n_chars : start + (i + 1) * n_chars] for i in range(n)], LONG_TEXT


def suite_profile(loaded: LoadedModel, plan, data_dir, progress: bool = True) -> dict:
    """The record's sink profile: Gu et al.'s protocol (T, n) with over-mixing, then the length sweep.

    Protocol texts are LAMBADA passages (or generated text without data); the sweep reads
    long passages of one book at every length, so lengths differ only in how much is read.
    """
    import time

    from sinkbench.cli import read_texts
    from sinkbench.data.datadir import data_file

    start = time.time()
    if data_dir is None:
        texts, source = generated_texts(plan.n, 3 * plan.T), "generated filler text (no data directory)"
    else:
        source = "lambada/lambada_test.jsonl"
        texts = read_texts(data_file(source, data_dir), "text", plan.n)
    profile = run_probe(loaded, texts, ProbeConfig(T=plan.T, n=plan.n, overmixing_sequences=plan.overmixing_sequences), progress)
    limit = loaded.identity.max_context or max(plan.sweep_lengths)
    points, sweep_source = [], None
    for T, n in zip(plan.sweep_lengths, plan.sweep_texts):
        if T > limit:
            break
        passages, sweep_source = long_texts(n, 8 * T, data_dir)  # ~4 characters a token: room to spare
        config = ProbeConfig(T=T, n=n, overmixing_sequences=0, batch_size=max(1, min(8, 4096 // T)))
        point = run_probe(loaded, passages, config, progress)
        points.append({"T": T, "n_sequences": point["n_sequences"], **{k: point[k] for k in SWEEP_KEYS}})
    return {
        "T": plan.T, "n_sequences": profile["n_sequences"], "text_source": source, "bos": "keep",
        "eps": list(ProbeConfig.eps),
        **{key: profile[key] for key in PROFILE_KEYS},
        "overmixing": {variant: profile["overmixing"][variant] for variant in ("with_bos", "without_bos")},
        "length_sweep": {"text_source": sweep_source or "none", "points": points},
        "wall_time_s": round(time.time() - start, 1),
    }


SWEEP_KEYS = ("sink_rate", "alpha_mean", "alpha_by_layer", "alpha_by_head")
PROFILE_KEYS = (*SWEEP_KEYS, "first_k_mass", "massive_activations", "value_norm_ratio_by_layer",
                "learned_sink_mass_by_layer")


def render(profile: dict) -> str:
    """A readable summary of a profile for the terminal."""
    model, cfg = profile["model"], profile["config"]
    lines = [
        f"sink profile: {model['name']} ({model['architecture']}, {model['n_layers']} layers x {model['n_heads']} heads)",
        f"  {profile['n_sequences']} sequences, T={cfg['T']} (mean {profile['mean_tokens']:.1f} tokens), bos={cfg['bos']}, "
        f"first token: " + ", ".join(f"{t['token']!r} x{t['count']}" for t in profile["first_tokens"][:3]),
        "  sink rate: " + "  ".join(f"eps={eps}: {rate:.3f}" for eps, rate in profile["sink_rate"].items()),
        f"  mean alpha (attention to the first token): {profile['alpha_mean']:.3f}",
        "  attention on the first k tokens: " + "  ".join(f"k={k + 1}: {m:.3f}" for k, m in enumerate(profile["first_k_mass"])),
        "  alpha by layer:",
    ]
    by_layer = profile["alpha_by_layer"]
    for layer, value in enumerate(by_layer):
        lines.append(f"    {layer:3d} {value:6.3f} {'#' * round(40 * value)}")
    lines.append("  strongest sink heads: " + ", ".join(f"L{h['layer']}H{h['head']}={h['alpha']:.3f}" for h in profile["strongest_heads"]))
    massive = profile["massive_activations"]
    top = max(range(len(massive["ratio_by_layer"])), key=lambda i: massive["ratio_by_layer"][i])
    lines.append(
        f"  massive activations: largest top/median |h| = {massive['ratio_by_layer'][top]:.0f} at layer {top}, "
        f"position {massive['top_position_by_layer'][top]}; layers whose top sits on token 0 in most sequences: "
        f"{sum(f > 0.5 for f in massive['fraction_at_first_token_by_layer'])}/{len(by_layer)}"
    )
    mixing = profile["overmixing"]
    parts = []
    for variant in ("with_bos", "without_bos"):
        entry = mixing.get(variant)
        if entry and entry["relative_change_by_layer"]:
            parts.append(f"{variant.replace('_', ' ')} {entry['relative_change_by_layer'][-1]:.3f}")
    if parts:
        lines.append("  over-mixing (one token swapped mid-text; relative change of later positions, last layer): " + ", ".join(parts))
    return "\n".join(lines)


def save_heatmap(profile: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = profile["alpha_by_head"]
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(table[0]) + 2), max(3, 0.22 * len(table) + 1.5)))
    image = ax.imshow(table, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"attention to the first token (alpha)\n{profile['model']['name']}, bos={profile['config']['bos']}")
    fig.colorbar(image, ax=ax, label="alpha")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
