"""What a record says was measured, in a few words: the model's name with its weights' quantization and fine-tune.

One home for the words the report, the CLI and the board put beside a model's name, so that a Q4
instruct checkpoint is never read as the bf16 base model. Records of schema 2.0 say nothing of their
weights: they get the name alone. No torch.
"""

from __future__ import annotations

import re

from sinkbench.record.types import Model, Weights

FORMATS = {"gguf": "GGUF", "safetensors": "safetensors", "pytorch": "pickle"}


def weights_of(model: Model) -> Weights | None:
    """A record's `model.weights`, or None for a record that does not say (schema 2.0)."""
    return model.weights or None


def weights_tag(weights: Weights | None) -> str:
    """'Q4_1, 8k-lc100k-mix1-ep2': quantization and fine-tune, shown beside the name on the board; '' when unknown."""
    if weights is None:
        return ""
    return ", ".join(part for part in (weights.quantization, weights.finetune) if isinstance(part, str))


def _squeezed(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def describe_model(model: Model) -> str:
    """'smollm2-135m (Smollm2 135M 8k Lc100K Mix1 Ep2, GGUF Q4_1)': the name, the checkpoint's own name, the
    fine-tune where that name does not already hold it, and the stored format; the name alone when unknown."""
    weights = weights_of(model)
    if weights is None:
        return model.name
    checkpoint, finetune = weights.checkpoint, weights.finetune
    parts = [checkpoint] if checkpoint else []
    if finetune and _squeezed(finetune) not in _squeezed(checkpoint or ""):
        parts.append(f"fine-tune {finetune}")
    stored = " ".join(p for p in (FORMATS.get(weights.format), weights.quantization) if p)
    if stored:
        parts.append(stored)
    return f"{model.name} ({', '.join(parts)})" if parts else model.name
