"""lm-eval's request cache, keyed by model and condition.

`use_cache=PATH` makes lm-eval wrap the model in its CachingLM, whose database is keyed by the
request alone: a second model or condition would be served the first one's answers (and get no
sink metrics). `KeyedRequestCache` puts the model's `cache_fingerprint` (model identity +
condition) into the database name. lm-eval builds the wrapper itself inside `simple_evaluate`,
so `keyed_request_cache()` lends it this class for the duration of one evaluation; `sinkbench
lm-eval` runs lm-eval's CLI inside it. Without it, SinkbenchLM refuses an unkeyed cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import lm_eval.api.model as lm_api

_LM_EVAL_CACHE = lm_api.CachingLM


class KeyedRequestCache(_LM_EVAL_CACHE):
    """CachingLM whose database name carries the model's fingerprint (models without one: lm-eval's name)."""

    def __init__(self, lm, cache_db: str) -> None:
        fingerprint = getattr(lm, "cache_fingerprint", None)
        if fingerprint:
            root, ext = os.path.splitext(cache_db)
            cache_db = f"{root}_{fingerprint}{ext}"
        super().__init__(lm, cache_db)


@contextmanager
def keyed_request_cache() -> Iterator[None]:
    """Inside, lm-eval's `use_cache` builds a KeyedRequestCache."""
    saved, lm_api.CachingLM = lm_api.CachingLM, KeyedRequestCache
    try:
        yield
    finally:
        lm_api.CachingLM = saved
