"""Conditions: small frozen values that change what the model sees, and the role each plays in a grid.

A condition is `<bos>` handling, a stress prefix (distractor tokens in front of every text), a
StreamingLLM window with sink keys, or a first-token knockout. Its *role* says what a grid cell is
for (the baseline, `<bos>` removed, the sink knocked out, ...): the summary columns and the board
find conditions by role, never by re-reading their settings. Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sinkbench.errors import SinkbenchError

BOS_MODES = ("keep", "drop", "double", "replace")

# The roles a condition plays in a suite's grid.
BASELINE = "baseline"  # <bos> as the tokenizer does, nothing else
BOS_DROP = "bos_drop"  # no <bos>
BOS_DROP_PREFIX = "bos_drop_prefix"  # no <bos>, the longest stress prefix (does the prefix's first token take the sink role?)
KNOCKOUT = "knockout"  # no query may attend to the first token, in every layer
PREFIX = "prefix"  # a stress prefix of some length (the sweep: one condition per length)
WINDOW_ONLY = "window_only"  # StreamingLLM window attention, no sink keys
WINDOW_SINKS = "window_sinks"  # the same window plus the first k keys
CUSTOM = "custom"  # anything else a user's own grid asks for
ROLES = (BASELINE, BOS_DROP, BOS_DROP_PREFIX, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS, CUSTOM)


@dataclass(frozen=True)
class Condition:
    """One cell of the stress grid.

    bos: keep (as the tokenizer does by default), drop (never a <bos>), double (<bos><bos>),
         replace (one other token, `replace_token`, where <bos> would be).
    prefix_length: tokens of unrelated natural text placed after the head and before every text.
    window, sink_keys: each query sees only the last `window` keys plus the first `sink_keys` keys.
    knockout: layers ("all", "3", "0-3", "0+2+5") in which no query but the first may attend to key 0.
    """

    bos: str = "keep"
    replace_token: str | None = None
    prefix_length: int = 0
    window: int | None = None
    sink_keys: int = 0
    knockout: str | None = None

    def __post_init__(self):
        if self.bos not in BOS_MODES:
            raise SinkbenchError(f"bos must be one of keep, drop, double, replace:<token>; got '{self.bos}'")
        if (self.bos == "replace") != (self.replace_token is not None):
            raise SinkbenchError("bos=replace needs a token: bos=replace:<token or id>")
        if self.prefix_length < 0:
            raise SinkbenchError(f"prefix must be >= 0 tokens, got {self.prefix_length}")
        if self.window is not None and self.window < 1:
            raise SinkbenchError(f"window must be >= 1 key, got {self.window}")
        if self.sink_keys < 0 or (self.sink_keys and self.window is None):
            raise SinkbenchError("sinks=<k> needs window=<W> and k >= 0")
        if self.knockout is not None and self.knockout != "all":
            knockout_layers(self.knockout, n_layers=10**6)  # syntax check only

    @classmethod
    def from_args(cls, bos=None, prefix=None, window=None, sinks=None, knockout=None) -> "Condition":
        """From lm-eval style model args (strings or numbers): bos="replace:<eos>", prefix="512", window, sinks, knockout."""
        values: dict = {}
        bos = "keep" if bos is None else str(bos)
        if bos.startswith("replace:"):
            bos, values["replace_token"] = "replace", bos.split(":", 1)[1]
        if prefix is not None:
            values["prefix_length"] = _as_int("prefix", prefix)
        if window is not None:
            values["window"] = _as_int("window", window)
        if sinks is not None:
            values["sink_keys"] = _as_int("sinks", sinks)
        if knockout is not None:
            values["knockout"] = str(knockout)
        return cls(bos=bos, **values)

    @classmethod
    def from_dict(cls, spec: dict) -> "Condition":
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise SinkbenchError(f"unknown condition field(s): {', '.join(sorted(unknown))}")
        return cls(**spec)

    @property
    def name(self) -> str:
        """Canonical short name, in model-arg words, e.g. "bos=drop,prefix=512"; stable across runs."""
        parts = [f"bos={self.bos}" + (f":{self.replace_token}" if self.replace_token else "")]
        if self.prefix_length:
            parts.append(f"prefix={self.prefix_length}")
        if self.window is not None:
            parts.append(f"window={self.window},sinks={self.sink_keys}")
        if self.knockout is not None:
            parts.append(f"knockout={self.knockout}")
        return ",".join(parts)

    @property
    def slug(self) -> str:
        """The name as a file-name part: cond-bos-drop_prefix-512."""
        table = str.maketrans({"=": "-", ",": "_", ":": "-", "<": None, ">": None, "/": "-"})
        return "cond-" + self.name.translate(table)

    def to_dict(self) -> dict:
        return asdict(self)


def role_of(condition: Condition) -> str:
    """The role of a condition in a user's own grid (a suite's grid names its roles itself)."""
    plain = condition.window is None and condition.knockout is None
    if condition.bos == "keep" and plain:
        return PREFIX if condition.prefix_length else BASELINE
    if condition.bos == "drop" and plain:
        return BOS_DROP_PREFIX if condition.prefix_length else BOS_DROP
    if condition.bos == "keep" and not condition.prefix_length and condition.window is None and condition.knockout == "all":
        return KNOCKOUT
    if condition.bos == "keep" and not condition.prefix_length and condition.window is not None and condition.knockout is None:
        return WINDOW_SINKS if condition.sink_keys else WINDOW_ONLY
    return CUSTOM


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


def _as_int(name: str, value) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise SinkbenchError(f"{name} must be a whole number, got '{value}'")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SinkbenchError(f"{name} must be a whole number, got '{value}'") from None
