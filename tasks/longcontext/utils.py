"""Loaders of the synthetic retrieval tasks: the evaluated model's tokenizer measures their lengths."""

from functools import lru_cache

from sinkbench.data.synthetic import dataset, model_spec
from sinkbench.measure.models import load_tokenizer


@lru_cache(maxsize=4)
def _tokenizer(spec):
    return load_tokenizer(spec)


def passkey_dataset(**metadata):
    return dataset("passkey", _tokenizer(model_spec("passkey", **metadata)), **metadata)


def kv_dataset(**metadata):
    return dataset("kv", _tokenizer(model_spec("kv", **metadata)), **metadata)
