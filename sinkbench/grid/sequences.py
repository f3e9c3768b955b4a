"""What the model sees, token by token: head + stress prefix + text, and the checks that it is so.

Every sequence sinkbench feeds a model is `head + stress + text`: the head is the condition's
`<bos>` handling (`<bos>`, nothing, `<bos><bos>`, or another token), the stress prefix is the
condition's distractor tokens, and the text is encoded without special tokens. Pure Python on
token ids (a tokenizer is only asked for ids), so it is tested without a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition


def head_tokens(condition: Condition, tokenizer, adds_bos: bool) -> tuple[int, ...]:
    """Token ids that start every sequence under `condition`, before stress prefix and text."""
    bos = tokenizer.bos_token_id
    if condition.bos == "keep":
        return (bos,) if adds_bos else ()
    if condition.bos == "drop":
        return ()
    if condition.bos == "double":
        if bos is None:
            raise SinkbenchError("bos=double: this tokenizer has no <bos> token")
        return (bos, bos)
    return (resolve_token(tokenizer, condition.replace_token),)


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


@dataclass(frozen=True)
class Sequences:
    """Builds and checks the sequences of one condition for one model."""

    condition: Condition
    head: tuple[int, ...]
    stress: tuple[int, ...]  # the stress prefix's token ids
    max_length: int  # the model's context, in tokens
    bos_id: int | None

    def __post_init__(self):
        if len(self.fixed) + 2 > self.max_length:
            raise SinkbenchError(f"a stress prefix of {len(self.stress)} tokens leaves no room in a "
                                 f"{self.max_length}-token context")

    @property
    def fixed(self) -> tuple[int, ...]:
        """The part every sequence starts with: head + stress prefix."""
        return self.head + self.stress

    def check(self, ids) -> None:
        """Raise if a sequence about to enter the model does not start as the condition says.

        The guard against lm-eval's own <bos> handling (a <bos> prefix token under
        add_bos_token=False, a doubled <bos> in rolling windows, <bos> lost to left truncation).
        """
        name, fixed = self.condition.name, list(self.fixed)
        if list(ids[: len(fixed)]) != fixed:
            raise SinkbenchError(f"condition {name}: sequence starts with {list(ids[:len(fixed) + 1])}, "
                                 f"expected {fixed} first")
        after = list(ids[len(self.head) : len(self.head) + 1])
        if self.bos_id is not None and self.condition.bos != "double" and after == [self.bos_id]:
            raise SinkbenchError(f"condition {name}: a second <bos> follows the head {list(self.head)}")
        if self.condition.bos == "drop" and list(ids[:1]) == [self.bos_id]:
            raise SinkbenchError(f"condition {name}: sequence starts with <bos> although bos=drop")

    def split_pair(self, context: list[int], continuation: list[int]) -> tuple[list[int], list[int]]:
        """(context, continuation) to score. With nothing in front (bos=drop, no prefix, empty
        context) the first token of the continuation has no context: it becomes the context."""
        if not context and not self.fixed:
            return continuation[:1], continuation[1:]
        return context, continuation

    def scored(self, context: list[int], continuation: list[int]) -> tuple[list[int], bool]:
        """(fixed + context + continuation, whether the context was cut from the left to fit).

        The last token is never fed to the model (nothing follows it), so a sequence may be one
        token longer than the context.
        """
        room = self.max_length + 1 - len(self.fixed)
        if len(continuation) >= room:
            raise SinkbenchError(f"a continuation of {len(continuation)} tokens does not fit after the "
                                 f"{len(self.fixed)}-token start of {self.condition.name}")
        body = context + continuation
        truncated = len(body) > room
        sequence = list(self.fixed) + body[-room:]
        self.check(sequence)
        return sequence, truncated

    def rolling_windows(self, tokens: list[int]) -> list[tuple[list[int], list[int]]]:
        """Disjoint perplexity windows over `tokens`: (context, predicted) pairs, each window
        fitting after the fixed start (so no window ever gets a second <bos>).

        The first window predicts the first `room` tokens with no context; each later one
        predicts the next `room` (fewer at the end) with as much context as still fits, as
        lm-eval's rolling windows with a context length of one do.
        """
        room = self.max_length - len(self.fixed)
        windows, predicted = [], min(room, len(tokens))
        if tokens:
            windows.append(([], tokens[:predicted]))
        while predicted < len(tokens):
            width = min(len(tokens) - predicted, room)
            end = predicted + width
            windows.append((tokens[end - room - 1 : end - width], tokens[end - width : end]))
            predicted = end
        return [self.split_pair(context, target) for context, target in windows]

    def prompt(self, context: list[int], max_new_tokens: int) -> list[int]:
        """fixed + context for generation, the context cut from the left to leave room for the answer."""
        room = self.max_length - max_new_tokens - len(self.fixed)
        if room < 1:
            raise SinkbenchError(f"max_gen_toks={max_new_tokens} leaves no room for context after the fixed start")
        sequence = list(self.fixed) + context[-room:]
        self.check(sequence)
        return sequence
