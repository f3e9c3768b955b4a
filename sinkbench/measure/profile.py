"""A model's sink profile over texts: probe, reduce, and the one layout `sinkbench probe` and `sinkbench run` write.

The profile (a record's `profile`, and `profile.json` of both commands) holds Gu et al.'s
protocol (T tokens x n texts: sink rate, alpha per layer and head, first-k mass) on natural text
and on uniformly random tokens, the layer table (what each layer's attention can see, and how many
queries could see the first token), massive activations, value norms, Barbero et al.'s over-mixing
with and without `<bos>`, a length sweep, and the per-text values that intervals are bootstrapped
from. Every attention average runs over the queries that can see the key and the layers where it
is defined (sinkbench.measure.metrics); an undefined value is null.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition
from sinkbench.grid.sequences import Sequences, head_tokens
from sinkbench.grid.suite import ProfilePlan
from sinkbench.measure import metrics
from sinkbench.measure.layers import NONE, LayerKind
from sinkbench.measure.models import LoadedModel
from sinkbench.measure.probe import SinkProbe

FORMAT = "sinkbench.profile/2"  # the file layout: {"format", "model", "profile"}


def text_hash(text: str) -> str:
    """A short content hash of a text: pairs per-text values of two profiles."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def encode_texts(loaded: LoadedModel, texts: list[str], T: int, bos: str) -> list[list[int]]:
    """Token ids the model will see: the condition's head, then the text, cut to T tokens."""
    condition = Condition.from_args(bos=bos)
    head = head_tokens(condition, loaded.tokenizer, loaded.identity.adds_bos)
    max_context = loaded.identity.max_context
    if max_context is not None and T > max_context:
        raise SinkbenchError(f"T={T} is larger than the model's context of {max_context} tokens")
    if T <= len(head) + 1:
        raise SinkbenchError(f"T={T} leaves no room for text after {len(head)} head token(s)")
    sequences = Sequences(condition, head, (), max_context or T, loaded.tokenizer.bos_token_id)
    encoded = []
    for index, text in enumerate(texts):
        if not text or not text.strip():
            raise SinkbenchError(f"text {index + 1} is empty")
        ids = (list(head) + loaded.tokenizer(text, add_special_tokens=False)["input_ids"])[:T]
        sequences.check(ids)
        encoded.append(ids)
    return encoded


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
def probe_sequences(loaded: LoadedModel, sequences: list[list[int]], plan: ProfilePlan, progress: bool = True) -> dict:
    """Per-sequence statistics: alpha (N, L, H) over the queries that see the first token (NaN in a
    layer where none does), first-k mass (N, K), queries seeing the first token (N, L), massive
    ratio and position (N, L), ..., and the layer table."""
    n = len(sequences)
    alpha, first_k, seeing = [None] * n, [None] * n, [None] * n
    massive_ratio, massive_position, value_ratio, learned = [None] * n, [None] * n, [None] * n, [None] * n
    with SinkProbe(loaded.model, first_k=plan.first_k) as probe:
        bar = tqdm(total=n, desc="probe", unit="seq", disable=not progress)
        for indices, batch in _batches(sequences, plan.batch_size):
            probe.group(torch.arange(len(indices))[:, None].expand(-1, batch.shape[1]), len(indices))  # a group per row
            loaded.model(batch.to(loaded.input_device), logits_to_keep=1, use_cache=False)  # full-vocabulary logits at every position are GBs
            stats = probe.collect()
            for row, index in enumerate(indices):
                alpha[index] = stats.alpha[row]
                first_k[index] = metrics.mean_defined(stats.first_k_mass[row], (0, 1))
                seeing[index] = stats.n_seeing_first[row]
                massive_ratio[index], massive_position[index] = stats.massive_ratio[row], stats.massive_position[row]
                value_ratio[index] = metrics.mean_defined(stats.value_norm_ratio[row], -1)
                if stats.learned_sink is not None:
                    learned[index] = metrics.mean_defined(stats.learned_sink[row], -1)
            bar.update(len(indices))
        bar.close()
        layers = probe.layers()
    return {
        "alpha": torch.stack(alpha).cpu(), "first_k": torch.stack(first_k).cpu(), "seeing": torch.stack(seeing).cpu(),
        "massive_ratio": torch.stack(massive_ratio).cpu(), "massive_position": torch.stack(massive_position).cpu(),
        "value_ratio": torch.stack(value_ratio).cpu(),
        "learned": torch.stack(learned).cpu() if learned[0] is not None else None,
        "layers": layers,
    }


def _alpha_part(alpha: torch.Tensor, eps: tuple[float, ...], layers: list[LayerKind]) -> dict:
    """Sink rates, alpha mean / by layer / by (layer, head) / by layer type of per-sequence alphas
    (N, L, H), each over what is defined (a text's mean alpha: over its layers where alpha is)."""
    mean_alpha = metrics.mean_defined(alpha, 0)  # (L, H)
    per_text = metrics.mean_defined(alpha, (1, 2))  # (N,)
    by_type = {}
    for kind in sorted({layer.type for layer in layers} - {NONE}):
        chosen = [layer.index for layer in layers if layer.type == kind]
        by_type[kind] = _finite(metrics.mean_defined(metrics.mean_defined(alpha[:, chosen], (1, 2)), 0).item())
    return {"sink_rate": {k: _finite(v) for k, v in metrics.sink_rates(alpha, eps).items()},
            "alpha_mean": _finite(metrics.mean_defined(per_text, 0).item()),
            "alpha_by_layer": metrics.listed(metrics.mean_defined(mean_alpha, -1)),
            "alpha_by_head": metrics.listed(mean_alpha), "alpha_mean_by_type": by_type}


def _finite(value: float) -> float | None:
    return None if value != value else value


def _per_text(alpha: torch.Tensor, hashes: list[str], eps: tuple[float, ...]) -> dict:
    """Each text's own alpha mean and sink rates: what intervals over texts are bootstrapped from."""
    return {"hashes": hashes, "alpha_mean": metrics.listed(metrics.mean_defined(alpha, (1, 2)), 6),
            "sink_rate": {f"{e:g}": metrics.listed(metrics.sink_rate_per_sequence(alpha, e), 6) for e in eps}}


def _layer_part(measured: dict) -> list[dict]:
    """The layer table with, per layer, the mean number of each text's queries that could see the first token."""
    seeing = measured["seeing"].float().mean(0).tolist()
    return [{**layer.to_dict(), "queries_seeing_first": round(count, 2)} for layer, count in zip(measured["layers"], seeing)]


def random_token_sequences(loaded: LoadedModel, plan: ProfilePlan) -> list[list[int]]:
    """Gu et al.'s random-token protocol: random_T token ids drawn uniformly from the vocabulary with the
    special tokens left out, seeded, behind the condition's head (`<bos>` as the plan says)."""
    condition = Condition.from_args(bos=plan.bos)
    head = list(head_tokens(condition, loaded.tokenizer, loaded.identity.adds_bos))
    special = set(loaded.tokenizer.all_special_ids)
    vocabulary = torch.tensor([i for i in range(len(loaded.tokenizer)) if i not in special])
    generator = torch.Generator().manual_seed(plan.seed)
    drawn = torch.randint(len(vocabulary), (plan.random_sequences, plan.random_T - len(head)), generator=generator)
    return [head + vocabulary[row].tolist() for row in drawn]


def _random_part(loaded: LoadedModel, plan: ProfilePlan, progress: bool) -> dict | None:
    if not plan.random_sequences:
        return None
    sequences = random_token_sequences(loaded, plan)
    measured = probe_sequences(loaded, sequences, plan, progress)
    hashes = [hashlib.sha256(str(ids).encode()).hexdigest()[:12] for ids in sequences]
    return {"T": plan.random_T, "n_sequences": len(sequences), "seed": plan.seed,
            **_alpha_part(measured["alpha"], plan.eps, measured["layers"]),
            "per_text": _per_text(measured["alpha"], hashes, plan.eps)}


@torch.no_grad()
def _overmixing_one(loaded: LoadedModel, texts: list[list[int]], head: list[int], plan: ProfilePlan) -> dict:
    """Swap one token in the middle of each text; per layer, how far the later positions move."""
    generator = torch.Generator().manual_seed(plan.seed)
    special = set(loaded.tokenizer.all_special_ids)
    movement, spread = [], []
    device = loaded.input_device
    for text in texts:
        ids = (head + text)[: plan.T]
        if len(ids) - len(head) < 4:
            continue
        position = len(head) + (len(ids) - len(head)) // 2
        replacement = ids[position]
        while replacement == ids[position] or replacement in special:
            replacement = int(torch.randint(len(loaded.tokenizer), (1,), generator=generator))
        original = torch.tensor([ids], device=device)
        perturbed = original.clone()
        perturbed[0, position] = replacement
        h_ref = torch.stack(loaded.model(original, output_hidden_states=True).hidden_states)[:, 0]  # (L+1, T, D)
        h_new = torch.stack(loaded.model(perturbed, output_hidden_states=True).hidden_states)[:, 0]
        movement.append(metrics.overmixing(h_ref, h_new, position).cpu())
        spread.append(metrics.representation_spread(h_ref).cpu())
    if not movement:
        return {"n_sequences": 0, "relative_change_by_layer": None, "representation_spread_by_layer": None,
                "last_layer_by_sequence": []}
    moved = torch.stack(movement)  # (N, L+1)
    return {
        "n_sequences": len(movement),
        "relative_change_by_layer": moved.mean(0).tolist(),
        "representation_spread_by_layer": torch.stack(spread).mean(0).tolist(),
        "last_layer_by_sequence": [round(v, 6) for v in moved[:, -1].tolist()],
    }


def _overmixing(loaded: LoadedModel, sequences: list[list[int]], plan: ProfilePlan, head_len: int) -> dict:
    """Barbero et al.'s experiment on the same texts, with <bos> in front and without, whatever the plan's <bos>."""
    texts = [ids[head_len:] for ids in sequences[: plan.overmixing_sequences]]
    bos = loaded.tokenizer.bos_token_id
    return {"with_bos": _overmixing_one(loaded, texts, [bos], plan) if bos is not None else None,
            "without_bos": _overmixing_one(loaded, texts, [], plan)}


def sink_profile(loaded: LoadedModel, plan: ProfilePlan, texts: list[str], text_source: str,
                 sweep: dict[int, list[str]] | None = None, sweep_source: str = "none", progress: bool = True) -> dict:
    """The profile of `loaded`: the protocol on the first plan.n `texts`, then the length sweep
    (passages per length in `sweep`; lengths beyond the model's context are left out)."""
    start = time.time()
    texts = texts[: plan.n]
    if not texts:
        raise SinkbenchError("no texts to probe")
    sequences = encode_texts(loaded, texts, plan.T, plan.bos)
    measured = probe_sequences(loaded, sequences, plan, progress)
    alpha = measured["alpha"]
    positions = measured["massive_position"]
    head_len = len(head_tokens(Condition.from_args(bos=plan.bos), loaded.tokenizer, loaded.identity.adds_bos))
    first_tokens = Counter(ids[0] for ids in sequences)
    profile = {
        "T": plan.T, "n_sequences": len(sequences), "text_source": text_source, "bos": plan.bos, "eps": list(plan.eps),
        "mean_tokens": sum(map(len, sequences)) / len(sequences),
        "first_tokens": [{"id": tid, "token": loaded.tokenizer.decode([tid])[:64], "count": count}
                         for tid, count in first_tokens.most_common(5)],
        "layers": _layer_part(measured),
        **_alpha_part(alpha, plan.eps, measured["layers"]),
        "first_k_mass": metrics.listed(metrics.mean_defined(measured["first_k"], 0)),
        "strongest_heads": [{"layer": l, "head": h, "alpha": a}
                            for l, h, a in metrics.strongest_heads(metrics.mean_defined(alpha, 0), top=5)],
        "massive_activations": {
            "ratio_by_layer": measured["massive_ratio"].mean(0).tolist(),
            "top_position_by_layer": torch.mode(positions, dim=0).values.tolist(),
            "fraction_at_first_token_by_layer": (positions == 0).float().mean(0).tolist(),
            "ratio_by_text": [[round(v, 4) for v in row] for row in measured["massive_ratio"].tolist()],
        },
        "value_norm_ratio_by_layer": metrics.listed(metrics.mean_defined(measured["value_ratio"], 0)),
        "learned_sink_mass_by_layer": (metrics.listed(metrics.mean_defined(measured["learned"], 0))
                                       if measured["learned"] is not None else None),
        "overmixing": _overmixing(loaded, sequences, plan, head_len),
        "per_text": _per_text(alpha, [text_hash(t) for t in texts], plan.eps),
    }
    points = []
    limit = loaded.identity.max_context or max(plan.sweep_lengths, default=plan.T)
    for T, passages in sorted((sweep or {}).items()):
        if T > limit:
            continue
        swept = encode_texts(loaded, passages, T, plan.bos)
        short = [i for i, ids in enumerate(swept) if len(ids) < T]
        if short:
            raise SinkbenchError(f"length sweep T={T}: text {short[0] + 1} has fewer than {T} tokens")
        point_plan = ProfilePlan(T=T, n=len(passages), bos=plan.bos, eps=plan.eps, first_k=plan.first_k,
                                 batch_size=max(1, min(plan.batch_size, 4096 // T)), sweep_lengths=(), sweep_texts=(),
                                 random_sequences=0)
        point = probe_sequences(loaded, swept, point_plan, progress)
        points.append({"T": T, "n_sequences": len(swept), **_alpha_part(point["alpha"], plan.eps, point["layers"]),
                       "queries_seeing_first_by_layer": [entry["queries_seeing_first"] for entry in _layer_part(point)],
                       "per_text": _per_text(point["alpha"], [text_hash(t) for t in passages], plan.eps)})
    profile["length_sweep"] = {"text_source": sweep_source if points else "none", "points": points}
    profile["random_tokens"] = _random_part(loaded, plan, progress)
    profile["wall_time_s"] = round(time.time() - start, 1)
    return profile


def profile_document(loaded: LoadedModel, profile: dict, **extra) -> dict:
    """The file layout of profile.json: the model it belongs to, and the profile."""
    return {"format": FORMAT, "model": loaded.identity.to_dict(), "profile": profile, **extra}


def render(document: dict) -> str:
    """A readable summary of a profile document (profile.json of `sinkbench probe` or `sinkbench run`)."""
    model, profile = document["model"], document["profile"]
    lines = [
        f"sink profile: {model['name']} ({model['architecture']}, {model['n_layers']} layers x {model['n_heads']} heads)",
        f"  {profile['n_sequences']} sequences, T={profile['T']} (mean {profile['mean_tokens']:.1f} tokens), bos={profile['bos']}, "
        f"first token: " + ", ".join(f"{t['token']!r} x{t['count']}" for t in profile["first_tokens"][:3]),
        "  sink rate (share of (layer, head) pairs with alpha > eps, over the layers where alpha is defined; "
        "the first token, Gu et al.'s Sink_1): " + "  ".join(f"eps={eps}: {_number(rate)}" for eps, rate in profile["sink_rate"].items()),
        f"  mean alpha (attention to the first token of the queries that can see it): {_number(profile['alpha_mean'])}"
        + "".join(f"; {kind} layers {_number(value)}" for kind, value in (profile.get("alpha_mean_by_type") or {}).items()
                  if len(profile.get("alpha_mean_by_type") or {}) > 1),
        "  attention on the first k tokens: " + "  ".join(f"k={k + 1}: {_number(m)}" for k, m in enumerate(profile["first_k_mass"])),
        "  alpha by layer (type, queries per text that could see the first token):",
    ]
    by_layer = profile["alpha_by_layer"]
    table = profile.get("layers") or [None] * len(by_layer)
    learned = profile.get("learned_sink_mass_by_layer")
    for layer, (value, kind) in enumerate(zip(by_layer, table)):
        what = ""
        if kind is not None:
            span = f" {kind['span']}" if kind["span"] else ""
            what = f"{kind['type'] + span:>13} {kind['queries_seeing_first']:>7g}"
        if value is None:
            reason = "no softmax attention" if kind is not None and kind["type"] == "none" else "no query sees the first token"
            lines.append(f"    {layer:3d} {what}      - ({reason})")
            continue
        sink = f"  learned sink {learned[layer]:.3f}" if learned and learned[layer] is not None else ""
        lines.append(f"    {layer:3d} {what} {value:6.3f} {'#' * round(40 * value)}{sink}")
    random = profile.get("random_tokens")
    if random:
        lines.append(f"  random tokens (Gu et al.: T={random['T']}, {random['n_sequences']} seeded sequences of non-special ids): "
                     + "  ".join(f"sink rate eps={eps}: {_number(rate)}" for eps, rate in random["sink_rate"].items())
                     + f"  mean alpha {_number(random['alpha_mean'])}")
    lines.append("  strongest sink heads: " + ", ".join(f"L{h['layer']}H{h['head']}={h['alpha']:.3f}" for h in profile["strongest_heads"]))
    massive = profile["massive_activations"]
    top = max(range(len(massive["ratio_by_layer"])), key=lambda i: massive["ratio_by_layer"][i])
    lines.append(
        f"  massive activations: largest top/median |h| = {massive['ratio_by_layer'][top]:.0f} at layer {top}, "
        f"position {massive['top_position_by_layer'][top]}; layers whose top sits on token 0 in most sequences: "
        f"{sum(f > 0.5 for f in massive['fraction_at_first_token_by_layer'])}/{len(by_layer)}"
    )
    parts = []
    for variant in ("with_bos", "without_bos"):
        entry = profile["overmixing"].get(variant)
        if entry and entry["relative_change_by_layer"]:
            parts.append(f"{variant.replace('_', ' ')} {entry['relative_change_by_layer'][-1]:.3f}")
    if parts:
        lines.append("  over-mixing (one token swapped mid-text; relative change of later positions, last layer): " + ", ".join(parts))
    for point in profile["length_sweep"]["points"]:
        by_type = point.get("alpha_mean_by_type") or {}
        kinds = "".join(f", {kind} layers {_number(v)}" for kind, v in by_type.items()) if len(by_type) > 1 else ""
        lines.append(f"  length sweep T={point['T']}: mean alpha {_number(point['alpha_mean'])}{kinds}, "
                     f"sink rate eps=0.3 {_number(point['sink_rate'].get('0.3'))} ({point['n_sequences']} texts)")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

