"""Synthetic long-context retrieval tasks, generated deterministically from a seed.

Lengths are measured in the evaluated model's tokens: the tasks' loaders (passkey_dataset and
kv_dataset, re-exported by tasks/longcontext/utils.py) load the tokenizer named by the `tokenizer`
metadata (`--metadata '{"tokenizer": "smollm2-135m"}'`; `sinkbench run` does it) and hand it to `dataset()`.
Each document's prompt plus answer comes within one filler sentence (or one key-value pair)
of the asked length, never over it. Retrieval is scored as a loglikelihood request whose
`acc` is 1 when greedy decoding would produce the answer exactly.
"""

from __future__ import annotations

import random
from functools import lru_cache

from datasets import Dataset, DatasetDict

from sinkbench.errors import SinkbenchError

# Our own neutral filler: plain statements with no numbers, so nothing competes with the key.
FILLER = [
    "The river runs past the old mill and into the valley.",
    "A light wind moves the tall grass along the hills.",
    "In the evening the market square grows quiet again.",
    "The baker opens his shop before the first bus arrives.",
    "Clouds gather over the harbour and then drift out to sea.",
    "Children walk to school along the road by the orchard.",
    "The library keeps its doors open until late in summer.",
    "Boats rest on the sand while the tide is out.",
]
DEFAULT_LENGTHS = (1024,)


def count_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _largest_fitting(build, tokenizer, length: int, upper: int):
    """The document from build(k) with the largest k whose token count is <= length."""
    low, high = 0, upper
    if count_tokens(tokenizer, build(0)) > length:
        raise SinkbenchError(f"length {length} is too short for the task's fixed text")
    while low < high:  # invariant: build(low) fits
        middle = (low + high + 1) // 2
        if count_tokens(tokenizer, build(middle)) <= length:
            low = middle
        else:
            high = middle - 1
    return low


def passkey_doc(tokenizer, length: int, depth: float, rng: random.Random) -> dict:
    """A five-digit pass key hidden at `depth` (0..1) of filler text, asked for at the end."""
    key = str(rng.randint(10000, 99999))
    intro = "Somewhere in the long text below there is a pass key. Remember it, you will be asked for it.\n\n"
    needle = f"The pass key is {key}. Remember it. {key} is the pass key. "
    question = "\n\nWhat is the pass key? The pass key is"
    answer = f" {key}"
    offset = rng.randrange(len(FILLER))

    def build(k: int) -> str:
        sentences = [FILLER[(offset + i) % len(FILLER)] for i in range(k)]
        cut = round(depth * k)
        return intro + " ".join(sentences[:cut]) + (" " if cut else "") + needle + " ".join(sentences[cut:]) + question + answer

    k = _largest_fitting(build, tokenizer, length, upper=length)
    text = build(k)[: -len(answer)]
    return {"context": text, "target": answer, "length": length, "depth": depth, "n_tokens": count_tokens(tokenizer, text + answer)}


def kv_doc(tokenizer, length: int, depth: float, rng: random.Random) -> dict:
    """A JSON object of random hex keys and values; the value of the key at `depth` is asked for."""
    pairs = [(f"{rng.getrandbits(32):08x}", f"{rng.getrandbits(32):08x}") for _ in range(length // 4)]
    intro = "Below is a JSON object of keys and values. Find the value of the key asked for at the end.\n\n"

    def build(k: int) -> str:
        chosen = pairs[: max(k, 1)]
        asked = chosen[min(int(depth * len(chosen)), len(chosen) - 1)]
        body = "{" + ", ".join(f'"{a}": "{b}"' for a, b in chosen) + "}"
        return intro + body + f'\n\nKey: "{asked[0]}"\nValue: "' + asked[1] + '"'

    k = max(_largest_fitting(build, tokenizer, length, upper=len(pairs)), 1)
    text = build(k)
    answer = text[text.rindex('Value: "') + len('Value: "') :]
    return {"context": text[: -len(answer)], "target": answer, "length": length, "depth": depth,
            "n_tokens": count_tokens(tokenizer, text)}


def generate(kind: str, tokenizer, lengths, n_per_length: int, seed: int) -> list[dict]:
    make = {"passkey": passkey_doc, "kv": kv_doc}[kind]
    docs = []
    for length in lengths:
        rng = random.Random(f"{kind}-{seed}-{length}")  # str seeds hash deterministically
        for i in range(n_per_length):
            docs.append(make(tokenizer, int(length), (i + 0.5) / n_per_length, rng))
    return docs


def model_spec(kind: str, tokenizer=None, pretrained=None, **_) -> str:
    """The model whose tokens measure lengths, from the task's metadata."""
    # lm-eval merges --model_args into task metadata, so `pretrained` names the evaluated model.
    spec = tokenizer or (pretrained if isinstance(pretrained, str) else None)
    if not spec:
        raise SinkbenchError(
            f"the {kind} task measures length in the evaluated model's tokens: pass "
            "--metadata '{\"tokenizer\": \"<model spec>\"}' (sinkbench run does this for you)"
        )
    return str(spec)


def dataset(kind: str, length_tokenizer, max_seq_lengths=DEFAULT_LENGTHS, n_per_length=10, seed=0, max_docs=None,
            **_) -> DatasetDict:
    """The task's documents as lm-eval's custom_dataset returns them; lengths in `length_tokenizer`'s tokens."""
    lengths = [max_seq_lengths] if isinstance(max_seq_lengths, int) else list(max_seq_lengths)
    docs = generate(kind, length_tokenizer, lengths, int(n_per_length), int(seed))
    return DatasetDict({"test": Dataset.from_list(docs[: int(max_docs)] if max_docs else docs)})


@lru_cache(maxsize=4)
def _length_tokenizer(spec: str):
    # lazy on purpose: transformers is needed only to build the tasks; generate() takes any tokenizer
    from sinkbench.measure.models import load_tokenizer

    return load_tokenizer(spec)


def passkey_dataset(**metadata) -> DatasetDict:
    """lm-eval's custom_dataset of sinkbench_passkey*: called with the task's metadata."""
    return dataset("passkey", _length_tokenizer(model_spec("passkey", **metadata)), **metadata)


def kv_dataset(**metadata) -> DatasetDict:
    """lm-eval's custom_dataset of sinkbench_kv_retrieval*: called with the task's metadata."""
    return dataset("kv", _length_tokenizer(model_spec("kv", **metadata)), **metadata)
