"""Conditions: small frozen values that change what the model sees (`<bos>`, stress prefix, window, knockout)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from sinkbench.errors import SinkbenchError

if TYPE_CHECKING:  # the board and `validate` read conditions without importing torch
    from sinkbench.measure.attention import MaskEdit

BOS_MODES = ("keep", "drop", "double", "replace")


@dataclass(frozen=True)
class Condition:
    """One cell of the stress grid.

    bos: keep (as the tokenizer does by default), drop (never a <bos>), double (<bos><bos>),
         replace (one other token, `replace_token`, where <bos> would be).
    prefix: tokens of unrelated natural text placed after the head and before every example.
    window, sinks: each query sees only the last `window` keys plus the first `sinks` keys.
    knockout: layers ("all", "3", "0-3", "0+2+5") in which no query may attend to key 0.
    """

    bos: str = "keep"
    replace_token: str | None = None
    prefix: int = 0
    window: int | None = None
    sinks: int = 0
    knockout: str | None = None

    def __post_init__(self):
        if self.bos not in BOS_MODES:
            raise SinkbenchError(f"bos must be one of keep, drop, double, replace:<token>; got '{self.bos}'")
        if (self.bos == "replace") != (self.replace_token is not None):
            raise SinkbenchError("bos=replace needs a token: bos=replace:<token or id>")
        if self.prefix < 0:
            raise SinkbenchError(f"prefix must be >= 0 tokens, got {self.prefix}")
        if self.window is not None and self.window < 1:
            raise SinkbenchError(f"window must be >= 1 key, got {self.window}")
        if self.sinks < 0 or (self.sinks and self.window is None):
            raise SinkbenchError("sinks=<k> needs window=<W> and k >= 0")
        if self.knockout is not None and self.knockout != "all":
            knockout_layers(self.knockout, n_layers=10**6)  # syntax check only

    @classmethod
    def from_args(cls, **args) -> "Condition":
        """Build from lm-eval style model args: bos="replace:<eos>", prefix="512", window=..., ..."""
        known = {f.name for f in fields(cls)} - {"replace_token"}
        unknown = set(args) - known
        if unknown:
            raise SinkbenchError(f"unknown condition argument(s): {', '.join(sorted(unknown))}")
        values = {k: v for k, v in args.items() if v is not None}
        bos = str(values.pop("bos", "keep"))
        if bos.startswith("replace:"):
            bos, values["replace_token"] = "replace", bos.split(":", 1)[1]
        for name in ("prefix", "window", "sinks"):
            if name in values:
                values[name] = _as_int(name, values[name])
        if "knockout" in values:
            values["knockout"] = str(values["knockout"])
        return cls(bos=bos, **values)

    @property
    def name(self) -> str:
        """Canonical short name, e.g. "bos=drop,prefix=512"; stable across runs."""
        parts = [f"bos={self.bos}" + (f":{self.replace_token}" if self.replace_token else "")]
        if self.prefix:
            parts.append(f"prefix={self.prefix}")
        if self.window is not None:
            parts.append(f"window={self.window},sinks={self.sinks}")
        if self.knockout is not None:
            parts.append(f"knockout={self.knockout}")
        return ",".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    def mask_edit(self, n_layers: int) -> "MaskEdit | None":
        from sinkbench.measure.attention import MaskEdit

        if self.window is None and self.knockout is None:
            return None
        layers = knockout_layers(self.knockout, n_layers) if self.knockout else frozenset()
        return MaskEdit(window=self.window, sinks=self.sinks, knockout_layers=layers)

    def head_tokens(self, tokenizer, adds_bos: bool) -> list[int]:
        """Token ids that start every sequence under this condition, before prefix and text."""
        bos = tokenizer.bos_token_id
        if self.bos == "keep":
            return [bos] if adds_bos else []
        if self.bos == "drop":
            return []
        if self.bos == "double":
            if bos is None:
                raise SinkbenchError("bos=double: this tokenizer has no <bos> token")
            return [bos, bos]
        return [resolve_token(tokenizer, self.replace_token)]


def resolve_token(tokenizer, token: str) -> int:
    """A token given as an id ("128") or as a vocabulary entry ("<eos>", "\\n" as written in the vocab)."""
    if token.isdigit():
        token_id = int(token)
        if token_id >= len(tokenizer):
            raise SinkbenchError(f"token id {token_id} is outside the vocabulary (size {len(tokenizer)})")
        return token_id
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id and token != tokenizer.unk_token:
        raise SinkbenchError(f"'{token}' is not a single token of this tokenizer; give a vocabulary entry or an id")
    return token_id


def knockout_layers(spec: str, n_layers: int) -> frozenset[int]:
    """Parse "all", "5", "0-3" or "0+2+5" into layer indices below n_layers."""
    if spec == "all":
        return frozenset(range(n_layers))
    layers: set[int] = set()
    for part in spec.split("+"):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise SinkbenchError(f"knockout must look like all, 3, 0-3 or 0+2+5; got '{spec}'")
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high:
            raise SinkbenchError(f"knockout range {part} runs backwards")
        layers.update(range(low, high + 1))
    if max(layers) >= n_layers:
        raise SinkbenchError(f"knockout names layer {max(layers)} but the model has {n_layers} layers")
    return frozenset(layers)


def check_sequence_start(ids: list[int], head: list[int], prefix: list[int], condition: Condition, bos_id) -> None:
    """Raise if a sequence about to enter the model does not start as the condition says.

    This is the guard against lm-eval's own <bos> handling (a <bos> prefix token under
    add_bos_token=False, a doubled <bos> in rolling windows, <bos> lost to left truncation).
    """
    start = head + prefix
    if ids[: len(start)] != start:
        raise SinkbenchError(
            f"condition {condition.name}: sequence starts with {ids[:len(start) + 1]}, expected {start} first"
        )
    after = ids[len(head) : len(head) + 1]
    if bos_id is not None and condition.bos != "double" and after == [bos_id]:
        raise SinkbenchError(f"condition {condition.name}: a second <bos> follows the head {head}")
    if condition.bos == "drop" and ids[:1] == [bos_id]:
        raise SinkbenchError(f"condition {condition.name}: sequence starts with <bos> although bos=drop")


def _as_int(name: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SinkbenchError(f"{name} must be a whole number, got '{value}'") from None
