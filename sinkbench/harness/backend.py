"""lm-eval model backend `sinkbench`: an HFLM whose every sequence starts as a stress condition says.

    lm_eval --model sinkbench --model_args pretrained=gemma3-270m,bos=drop,prefix=512 ...

What it changes against stock `hf`:
* `<bos>` is placed by the condition, never by the tokenizer or lm-eval: texts are encoded
  without special tokens and every sequence is `head + stress prefix + text`. The start of
  every sequence is checked before it enters the model; a mismatch raises.
* The stress prefix is run once; its keys and values are shared by every batch (one grouped
  attention kernel per layer, see sinkbench.measure.attention), never copied per row.
* Logits are computed only at scored positions (`logits_to_keep`): the LM head of a 262k
  vocabulary dominates small models otherwise.
* The same forward passes feed a SinkProbe: per-request sink statistics go to a sidecar
  JSONL and, aggregated per task, into `results["config"]["sinkbench"]`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

import sinkbench
from sinkbench.measure import metrics
from sinkbench.measure.attention import SharedPrefix, capture_prefix, shared_prefix
from sinkbench.grid.conditions import Condition, check_sequence_start
from sinkbench.data.datadir import stress_prefix
from sinkbench.errors import SinkbenchError
from sinkbench.harness.ledger import RequestSinks, SinkLedger
from sinkbench.measure.models import LoadedModel, load_model
from sinkbench.measure.probe import SinkProbe

log = logging.getLogger(__name__)
_NO_TOKEN = -1  # placeholder lm-eval's rolling windows put where a prefix token would go


@dataclass
class ScoreItem:
    key: tuple | None  # (task, doc_id, idx[, window]) for the sidecar; None for anonymous requests
    context: list[int]  # text tokens only: no <bos>, no stress prefix
    continuation: list[int]


def _resolve_device(requested) -> str:
    """Under `accelerate launch` each rank takes its own device; CUDA asked for but absent means CPU."""
    from accelerate import PartialState

    # Without CUDA, accelerate counts ranks (torchrun/accelerate launch) only when told cpu=True.
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes > 1:
        return str(state.device)
    requested = str(requested or "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %s asked for but CUDA is not available: running on CPU", requested)
        return "cpu"
    return requested


def _request_key(request) -> tuple | None:
    if getattr(request, "task_name", None) is None:
        return None
    return (request.task_name, request.doc_id, request.idx)


@register_model("sinkbench")
class SinkbenchLM(HFLM):
    """HFLM with stress conditions and sink metrics; see the module docstring."""

    def __init__(
        self,
        pretrained: str = "smollm2-135m",
        bos: str = "keep",
        prefix: int = 0,
        window: int | None = None,
        sinks: int = 0,
        knockout: str | None = None,
        sidecar: str | None = None,
        data_dir: str | None = None,
        first_k: int = 4,
        dtype: str = "float32",
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        family: str | None = None,
        loaded: LoadedModel | None = None,
        reuse_prefix: bool = True,
        condition: Condition | None = None,
        **kwargs,
    ):
        """`loaded` reuses an already loaded model (one load for a whole condition grid); `condition`
        gives the stress condition as an object, in place of the bos/prefix/window/sinks/knockout args."""
        if condition is None:
            condition = Condition.from_args(bos=bos, prefix=prefix, window=window, sinks=sinks, knockout=knockout)
        self.condition = condition
        device = _resolve_device(kwargs.pop("device", None))
        if loaded is None:
            loaded = load_model(
                str(pretrained), dtype=dtype, trust_remote_code=trust_remote_code,
                allow_pickle=allow_pickle, family=family, device=device,
            )
        kwargs.pop("tokenizer", None)
        kwargs.pop("add_bos_token", None)  # the condition decides, not the tokenizer
        super().__init__(pretrained=loaded.model, tokenizer=loaded.tokenizer, add_bos_token=False, **kwargs)
        self.identity = loaded.identity
        self._setup_data_parallel()
        tokenizer = self.tokenizer
        self.head = self.condition.head_tokens(tokenizer, self.identity.adds_bos)
        self.stress = stress_prefix(tokenizer, self.condition.prefix, data_dir) if self.condition.prefix else None
        self.prefix_ids = list(self.stress.token_ids) if self.stress else []
        self.fixed = self.head + self.prefix_ids  # the part every sequence starts with
        if len(self.fixed) + 2 > self.max_length:
            raise SinkbenchError(f"prefix of {len(self.fixed)} tokens leaves no room in a {self.max_length}-token context")
        edit = self.condition.mask_edit(self.identity.n_layers)
        self.probe = SinkProbe(self.model, first_k=first_k, edit=edit, activations=False)  # every pass runs in it
        if sidecar is not None and self.rank > 0:
            sidecar = f"{sidecar}.rank{self.rank}"
        if sidecar is not None:
            Path(sidecar).parent.mkdir(parents=True, exist_ok=True)
        self.ledger = SinkLedger(condition=self.condition.name, sidecar=Path(sidecar) if sidecar else None)
        self.truncated_requests = 0
        self._shared: SharedPrefix | None = None  # the stress prefix's keys and values, made on first use
        self.reuse_prefix = reuse_prefix  # False recomputes the prefix per sequence (benchmark baseline)

    # ---- set-up -------------------------------------------------------------------------

    def _setup_data_parallel(self) -> None:
        """HFLM skips its distributed set-up for a model object; do the data-parallel part here."""
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        if state.num_processes > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes

    @property
    def cache_fingerprint(self) -> str:
        """Identifies model and condition, so lm-eval's request cache never mixes two of them."""
        parts = [sinkbench.__version__, json.dumps(self.identity.to_dict(), sort_keys=True), self.condition.name,
                 self.stress.tokens_sha256 if self.stress else ""]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def tok_encode(self, string: str, add_special_tokens=None, left_truncate_len=None, **kwargs) -> list[int]:
        """Text tokens only. <bos> is placed by the condition (lm-eval would add or double it)."""
        encoding = self.tokenizer.encode(string, add_special_tokens=False)
        return encoding[-left_truncate_len:] if left_truncate_len else encoding

    # ---- sequence building --------------------------------------------------------------

    def _full_sequence(self, context: list[int], continuation: list[int]) -> list[int]:
        """fixed + context + continuation, the context cut from the left to fit the model."""
        room = self.max_length + 1 - len(self.fixed)
        if len(continuation) >= room:
            raise SinkbenchError(f"a continuation of {len(continuation)} tokens does not fit after the fixed start")
        body = context + continuation
        if len(body) > room:
            self.truncated_requests += 1
            body = body[-room:]
        sequence = self.fixed + body
        check_sequence_start(sequence, self.head, self.prefix_ids, self.condition, self.tokenizer.bos_token_id)
        return sequence

    def _shared_prefix(self) -> SharedPrefix:
        """Keys and values of all fixed tokens but the last, computed once per model and condition.

        Call inside the probe's session. The last fixed token runs with each batch, so every
        scored position has an input token in the batch.
        """
        if self._shared is None:
            ids = torch.tensor([self.fixed[:-1]], device=self.device)
            with capture_prefix() as layers:
                self.model(ids, use_cache=False)
            self.probe.collect()  # the prefix's own queries are not any request's
            self._shared = SharedPrefix(layers, ids.shape[1])
        return self._shared

    # ---- scoring ------------------------------------------------------------------------

    @torch.no_grad()
    def _score(self, items: list[ScoreItem], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(log P(continuation | fixed + context), greedy match) for every item, in input order."""
        sequences = [self._full_sequence(item.context, item.continuation) for item in items]
        order = sorted(range(len(items)), key=lambda i: -len(sequences[i]))
        batch_size = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 1
        share = bool(self.prefix_ids) and self.reuse_prefix
        skip = len(self.fixed) - 1 if share else 0  # tokens held as the shared prefix, not in the input
        results: list[tuple[float, bool] | None] = [None] * len(items)
        bar = tqdm(total=len(items), desc=f"sinkbench {self.condition.name}", disable=disable_tqdm or self.rank != 0)
        with self.probe:
            prefix = self._shared_prefix() if share else None
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                inputs = [sequences[i][skip:-1] for i in batch]
                lengths = [len(x) for x in inputs]
                cont_lens = [len(items[i].continuation) for i in batch]
                ids = torch.zeros(len(batch), max(lengths), dtype=torch.long, device=self.device)
                for row, tokens in enumerate(inputs):  # right padding: causal rows never see it
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                width = max(cont_lens)
                keep = torch.stack([torch.arange(n - width, n).clamp(min=0) for n in lengths]).to(self.device)
                if prefix is None:
                    logits = self.model(ids, logits_to_keep=keep, use_cache=False).logits  # (B, width, V)
                else:
                    with shared_prefix(prefix):
                        positions = prefix.position_ids(len(batch), ids.shape[1], self.device)
                        logits = self.model(ids, position_ids=positions, logits_to_keep=keep, use_cache=False).logits
                logprobs = F.log_softmax(logits.float(), dim=-1)
                stats = self.probe.collect()
                for row, index in enumerate(batch):
                    cont = torch.tensor(items[index].continuation, device=self.device)
                    scored = logprobs[row, width - len(cont) :]  # (C, V)
                    greedy = bool((scored.argmax(-1) == cont).all())
                    results[index] = (scored.gather(-1, cont[:, None]).sum().item(), greedy)
                    own_start = len(self.fixed) - skip  # the request's own queries: after the fixed start
                    self._add_sinks(items[index].key, stats, row, own_start, lengths[row], sequences[index])
                bar.update(len(batch))
        bar.close()
        return results

    def _add_sinks(self, key, stats, row: int, own_start: int, length: int, sequence: list[int]) -> None:
        """One request's sink statistics from its row of a forward pass: queries own_start..length-1.

        The request's own queries are those after the condition's fixed start; a sequence with
        nothing after it (an empty context) keeps its last query so that it has one.
        """
        own = slice(min(own_start, length - 1), length)
        alpha = metrics.alpha(stats.first_key[row, :, :, own])  # (L, H)
        mass = metrics.first_k_mass(stats.first_k_mass[row, :, :, own]).mean(dim=(0, 1))
        self.ledger.add(key, RequestSinks(alpha, mass, len(sequence), sequence[0]))

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        """lm-eval's token-level entry point; the context tokens here are text tokens only."""
        items = [ScoreItem(None, list(ctx), list(cont)) for _, ctx, cont in requests]
        return self._score(items, disable_tqdm)

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if context:
            return self._encode_pair(context, continuation)
        continuation_enc = self.tok_encode(continuation)
        if not self.fixed:
            # Nothing to condition the first token on (bos=drop, no prefix): it becomes the context.
            return continuation_enc[:1], continuation_enc[1:]
        return [], continuation_enc

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        items = []
        for request in requests:
            context, continuation = request.args
            ctx, cont = self._pair(context, continuation)
            if not cont:
                raise SinkbenchError(f"{_request_key(request)}: empty continuation under {self.condition.name}")
            items.append(ScoreItem(_request_key(request), ctx, cont))
        results = self._score(items, disable_tqdm)
        for request, answer in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request.args, answer)
        self._gather_ranks()
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        """Perplexity windows, each starting with the condition's fixed part (never a doubled <bos>)."""
        items, owners = [], []
        room = self.max_length - len(self.fixed)
        for number, request in enumerate(requests):
            tokens = self.tok_encode(request.args[0])
            windows = map(make_disjoint_window, get_rolling_token_windows(tokens, _NO_TOKEN, room, 1))
            key = _request_key(request)
            for window_index, (context, predicted) in enumerate(windows):
                context = [t for t in context if t != _NO_TOKEN]
                if not context and not self.fixed:
                    context, predicted = predicted[:1], predicted[1:]  # first token has no context
                if predicted:
                    items.append(ScoreItem(None if key is None else (*key, window_index), context, predicted))
                    owners.append(number)
        scores = self._score(items, disable_tqdm)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, scores):
            totals[owner] += logprob
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        self._gather_ranks()
        return totals

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False):
        """Greedy (or as asked) generation, one request at a time, under the condition.

        Sink metrics come from the prompt pass (prefill) of each generation: its queries are the
        request's own; the one-token decoding steps after it are not recorded.
        """
        with self.probe:
            self.probe.min_queries = 2
            try:
                outputs = self._generate_all(requests, disable_tqdm)
            finally:
                self.probe.min_queries = 1
        self._gather_ranks()
        return outputs

    def _generate_all(self, requests, disable_tqdm: bool) -> list[str]:
        outputs = []
        for request in tqdm(requests, desc="sinkbench generate", disable=disable_tqdm or self.rank != 0):
            context, gen_kwargs = request.args
            gen_kwargs = dict(gen_kwargs)
            until = handle_stop_sequences(gen_kwargs.pop("until", None), eos=self.tok_decode(self.eot_token_id))
            max_gen = int(gen_kwargs.pop("max_gen_toks", self.max_gen_toks))
            room = self.max_length - max_gen - len(self.fixed)
            if room < 1:
                raise SinkbenchError(f"max_gen_toks={max_gen} leaves no room for context after the fixed start")
            sequence = self.fixed + self.tok_encode(context, left_truncate_len=room)
            check_sequence_start(sequence, self.head, self.prefix_ids, self.condition, self.tokenizer.bos_token_id)
            ids = torch.tensor([sequence], device=self.device)
            out = self._model_generate(ids, max_length=len(sequence) + max_gen, stop=until, **gen_kwargs)
            if len(sequence) >= self.probe.min_queries:
                stats = self.probe.collect()
                self._add_sinks(_request_key(request), stats, 0, len(self.fixed), len(sequence), sequence)
            else:  # a one-token prompt: no prompt pass to read
                self.ledger.first_tokens[sequence[0]] += 1
            text = self.tok_decode(out[0, len(sequence) :].tolist())
            for stop in until:
                if stop:
                    text = text.split(stop)[0]
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", request.args, text)
        return outputs

    # ---- results ------------------------------------------------------------------------

    def _gather_ranks(self) -> None:
        """Under data parallelism every rank scored a share: merge all ranks' entries on each."""
        if self.world_size <= 1:
            return
        gathered: list = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, (self.ledger.entries, dict(self.ledger.first_tokens)))
        self.ledger.merge([entries for entries, _ in gathered])
        self.ledger.first_tokens.clear()
        for _, counts in gathered:
            self.ledger.first_tokens.update(counts)

    def get_model_info(self) -> dict:
        """Merged into lm-eval's results["config"]: identity, condition and sink metrics per task."""
        tokenizer = self.tokenizer
        return {
            "model_num_parameters": self.identity.n_parameters,
            "model_dtype": self.identity.dtype,
            "sinkbench": {
                "version": sinkbench.__version__,
                "model": self.identity.to_dict(),
                "condition": self.condition.name,
                "head_tokens": self.head,
                "stress_prefix": self.stress.describe() if self.stress else None,
                "first_tokens": {
                    f"{tokenizer.decode([tid])!r} ({tid})": count for tid, count in self.ledger.first_tokens.most_common()
                },
                "truncated_requests": self.truncated_requests,
                "sidecar": str(self.ledger.sidecar) if self.ledger.sidecar else None,
                "sink_metrics": self.ledger.summary(),
            },
        }


# ---- lm-eval's request cache ------------------------------------------------------------
# `use_cache=PATH` keys entries on the request alone, so a second model or condition would be
# served the first one's answers. lm-eval builds the cache through the module attribute
# lm_eval.api.model.CachingLM at call time; we replace it with a subclass that puts the
# model's cache_fingerprint (model + condition) into the database name. LMs without a
# fingerprint (stock backends) keep lm-eval's behaviour.

import lm_eval.api.model as _lm_api  # noqa: E402

if not getattr(_lm_api.CachingLM, "_sinkbench_fingerprinted", False):

    class FingerprintedCachingLM(_lm_api.CachingLM):
        _sinkbench_fingerprinted = True

        def __init__(self, lm, cache_db: str) -> None:
            fingerprint = getattr(lm, "cache_fingerprint", None)
            if fingerprint:
                root, ext = os.path.splitext(cache_db)
                cache_db = f"{root}_{fingerprint}{ext}"
            super().__init__(lm, cache_db)

    _lm_api.CachingLM = FingerprintedCachingLM
