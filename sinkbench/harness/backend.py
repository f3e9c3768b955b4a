"""lm-eval model backend `sinkbench`: every sequence starts as a stress condition says, and sink metrics come from the scoring passes.

    lm_eval --model sinkbench --model_args pretrained=gemma3-270m,bos=drop,prefix=512 ...

What it changes against stock `hf`:
* `<bos>` is placed by the condition, never by the tokenizer or lm-eval: texts are encoded
  without special tokens and every sequence is `head + stress prefix + text`, checked before it
  enters the model (sinkbench.grid.sequences).
* Scoring shares work exactly (sinkbench.harness.scoring): the stress prefix once, one context
  pass per multiple-choice question, batches sized by tokens, logits only where scored.
* The same forward passes feed a SinkProbe: per-request sink statistics go to a ledger (and a
  sidecar JSONL), aggregated per task into `results["config"]["sinkbench"]`; `statistics()`
  hands them to `sinkbench run`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from accelerate import PartialState
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from lm_eval.models.utils_hf import stop_sequences_criteria
from tqdm import tqdm

import sinkbench
from sinkbench.data.datadir import StressTokens, stress_prefix
from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition
from sinkbench.grid.sequences import Sequences, head_tokens
from sinkbench.harness.ledger import SinkLedger
from sinkbench.harness.ranks import DataParallel
from sinkbench.harness.scoring import Batching, Request, ScoreCounts, Scorer, default_max_batch_tokens, request_stats
from sinkbench.measure.attention import MaskEdit
from sinkbench.measure.models import LoadedModel, ModelIdentity, input_device, load_model
from sinkbench.measure.placement import Placement
from sinkbench.measure.probe import SinkProbe

log = logging.getLogger(__name__)
DEFAULT_MAX_LENGTH = 2048  # lm-eval's default when a model names no context length
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default
# Model args lm-eval passes to every backend that mean nothing here (accepted, ignored).
LM_EVAL_EXTRAS = ("max_batch_size", "tokenizer", "add_bos_token")


@dataclass(frozen=True)
class BackendOptions:
    """The model args of `--model sinkbench`, parsed once: what to load, which condition, how to batch."""

    pretrained: str = "smollm2-135m"
    condition: Condition = field(default_factory=Condition)
    dtype: str = "float32"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    family: str | None = None
    device: str | None = None
    device_map: str | None = None  # accelerate's big-model loading: auto, balanced, sequential
    max_memory: str | None = None  # with device_map: per device caps, "0=20GiB,cpu=64GiB"
    sidecar: str | None = None
    data_dir: str | None = None
    batching: Batching = field(default_factory=Batching)
    max_length: int | None = None
    max_gen_toks: int = DEFAULT_MAX_GEN_TOKS
    first_k: int = 4  # StreamingLLM keeps 4 sink tokens: report the mass on the first 4 keys

    @classmethod
    def from_model_args(cls, **args) -> "BackendOptions":
        """From lm-eval's model args: pretrained, bos, prefix, window, sinks, knockout, dtype,
        trust_remote_code, allow_pickle, family, device, device_map, max_memory, sidecar, data_dir, batch_size (N or auto),
        max_batch_tokens, share_contexts, max_length, max_gen_toks, first_k."""
        condition = Condition.from_args(**{name: args.pop(name, None) for name in ("bos", "prefix", "window", "sinks", "knockout")})
        batch_size = args.pop("batch_size", None)
        max_tokens = args.pop("max_batch_tokens", None)
        share = args.pop("share_contexts", True)
        if max_tokens is None:
            max_tokens = default_max_batch_tokens(args.get("device") or "cpu")
        batching = Batching(max_tokens=_positive("max_batch_tokens", max_tokens), max_rows=_rows(batch_size),
                            share_contexts=_flag("share_contexts", share))
        for name in LM_EVAL_EXTRAS:
            args.pop(name, None)
        known = {f.name for f in fields(cls)} - {"condition", "batching"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise SinkbenchError(f"unknown model argument(s) for --model sinkbench: {', '.join(unknown)}")
        for name in ("trust_remote_code", "allow_pickle"):
            if name in args:
                args[name] = _flag(name, args[name])
        for name in ("max_length", "max_gen_toks", "first_k"):
            if args.get(name) is not None:
                args[name] = _positive(name, args[name])
        if "pretrained" in args:
            args["pretrained"] = str(args["pretrained"])
        return cls(condition=condition, batching=batching, **args)


@dataclass
class ConditionStatistics:
    """What one condition's passes measured beside the scores: what `sinkbench run` records."""

    condition: Condition
    identity: ModelIdentity
    ledger: SinkLedger
    head: tuple[int, ...]
    stress: StressTokens | None
    counts: ScoreCounts
    tokenizer: object

    @property
    def tokens_processed(self) -> int:
        """Tokens of the sequences scored, stress prefix and head included (what the model attended over)."""
        return sum(stats.n_tokens for stats in self.ledger.entries.values())


@register_model("sinkbench")
class SinkbenchLM(DataParallel, TemplateLM):
    """lm-eval's LM with stress conditions and sink metrics; see the module docstring."""

    def __init__(self, pretrained: str = "smollm2-135m", *, loaded: LoadedModel | None = None,
                 condition: Condition | None = None, options: BackendOptions | None = None, **model_args):
        """`loaded` reuses an already loaded model (one load for a whole grid); `condition` and
        `options` are the parsed forms of the model args, for callers that hold them already."""
        super().__init__()
        options = options or BackendOptions.from_model_args(pretrained=pretrained, **model_args)
        self.options = options
        self.condition = condition or options.condition
        state = PartialState(cpu=not torch.cuda.is_available())  # ranks under torchrun / accelerate launch
        self._rank, self._world_size = state.process_index, state.num_processes
        self._device = torch.device(state.device if state.num_processes > 1 else _device(options.device))
        if loaded is None:
            placement = Placement.from_args(options.device_map, options.max_memory, str(options.device or "cpu"))
            loaded = load_model(options.pretrained, dtype=options.dtype, trust_remote_code=options.trust_remote_code,
                                allow_pickle=options.allow_pickle, family=options.family, device=str(self._device),
                                placement=placement)
        self.loaded = loaded
        if getattr(loaded.model, "hf_device_map", None) is not None:  # spread over devices: ids go to the first layer
            self._device = input_device(loaded.model)
        self.model, self.tokenizer, self.identity = self.loaded.model, self.loaded.tokenizer, self.loaded.identity
        self.max_length = options.max_length or self.identity.max_context or DEFAULT_MAX_LENGTH
        self.stress = stress_prefix(self.tokenizer, self.condition.prefix_length, options.data_dir) if self.condition.prefix_length else None
        self.sequences = Sequences(self.condition, head_tokens(self.condition, self.tokenizer, self.identity.adds_bos),
                                   self.stress.token_ids if self.stress else (), self.max_length, self.tokenizer.bos_token_id)
        # Attention to the text's own first token (after head and stress prefix) is read beside key 0.
        probe = SinkProbe(self.model, first_k=options.first_k, edit=MaskEdit.for_condition(self.condition, self.identity.n_layers),
                          key_positions=(len(self.sequences.fixed),), values=False, activations=False)
        self.scorer = Scorer(self.model, self.sequences, probe, options.batching, self._device)
        sidecar = options.sidecar
        if sidecar is not None:
            sidecar = f"{sidecar}.rank{self.rank}" if self.rank > 0 else sidecar
            Path(sidecar).parent.mkdir(parents=True, exist_ok=True)
        self.ledger = SinkLedger(condition=self.condition.name, sidecar=Path(sidecar) if sidecar else None)

    # ---- what lm-eval asks of a model ---------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name_or_path.replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens=None, left_truncate_len=None, **kwargs) -> list[int]:
        """Text tokens only. <bos> is placed by the condition (lm-eval would add or double it)."""
        encoding = self.tokenizer.encode(string, add_special_tokens=False)
        return encoding[-left_truncate_len:] if left_truncate_len else encoding

    def tok_decode(self, tokens, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    @property
    def cache_fingerprint(self) -> str:
        """Identifies model and condition, so lm-eval's request cache never mixes two of them."""
        parts = [sinkbench.__version__, json.dumps(self.identity.to_dict(), sort_keys=True), self.condition.name,
                 self.stress.tokens_sha256 if self.stress else ""]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def set_cache_hook(self, cache_hook) -> None:
        """lm-eval's own request cache is keyed by request only: a second model or condition
        would be served this one's answers. sinkbench.harness.cache keys it by model and condition."""
        filename = str(getattr(getattr(cache_hook, "dbdict", None), "filename", "") or "")
        if filename and self.cache_fingerprint not in filename:
            raise SinkbenchError("lm-eval's request cache (use_cache) is keyed by request only, so it would mix models and "
                                 "conditions; run through `sinkbench lm-eval`, which keys it by both, or wrap the model "
                                 "in sinkbench.harness.cache.KeyedRequestCache")
        super().set_cache_hook(cache_hook)

    # ---- scoring ------------------------------------------------------------------------

    def _score(self, requests: list[Request], disable_tqdm: bool) -> list[tuple[float, bool]]:
        results, stats = self.scorer.score(requests, progress=not disable_tqdm and self.rank == 0)
        for request, entry in zip(requests, stats):
            self.ledger.add(request.key, entry)
        return results

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        """lm-eval's token-level entry point; the context tokens here are text tokens only."""
        return self._score([Request(None, list(ctx), list(cont)) for _, ctx, cont in requests], disable_tqdm)

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Text tokens of a request: lm-eval's own split (a trailing space moves to the continuation)."""
        if context:
            context_ids, continuation_ids = self._encode_pair(context, continuation)
        else:
            context_ids, continuation_ids = [], self.tok_encode(continuation)
        return self.sequences.split_pair(context_ids, continuation_ids)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        items = []
        for request in requests:
            context, continuation = self._pair(*request.args)
            if not continuation:
                raise SinkbenchError(f"{_request_key(request)}: empty continuation under {self.condition.name}")
            items.append(Request(_request_key(request), context, continuation))
        results = self._score(items, disable_tqdm)
        for request, answer in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request.args, answer)
        self.merge_ledgers(self.ledger)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        """Perplexity windows, each starting with the condition's fixed part (never a doubled <bos>)."""
        items, owners = [], []
        for number, request in enumerate(requests):
            key = _request_key(request)
            windows = self.sequences.rolling_windows(self.tok_encode(request.args[0]))
            for window, (context, predicted) in enumerate(windows):
                if predicted:
                    items.append(Request(None if key is None else (*key, window), context, predicted))
                    owners.append(number)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._score(items, disable_tqdm)):
            totals[owner] += logprob
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        self.merge_ledgers(self.ledger)
        return totals

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False):
        """Greedy (or as asked) generation, one request at a time, under the condition.

        Sink metrics come from the prompt pass (prefill) of each generation: its queries are the
        request's own; the one-token decoding steps after it are not recorded.
        """
        outputs = []
        probe = self.scorer.probe
        with probe:
            probe.min_queries = 2
            try:
                for request in tqdm(requests, desc="sinkbench generate", disable=disable_tqdm or self.rank != 0):
                    outputs.append(self._generate(request, probe))
            finally:
                probe.min_queries = 1
        self.merge_ledgers(self.ledger)
        return outputs

    def _generate(self, request, probe: SinkProbe) -> str:
        context, gen_kwargs = request.args
        kwargs = normalize_gen_kwargs(gen_kwargs, self.options.max_gen_toks)  # lm-eval's own reading of them
        until = handle_stop_sequences(kwargs.pop("until", None), eos=self.tokenizer.decode([self.eot_token_id]))
        max_new = kwargs.pop("max_gen_toks")
        if kwargs.get("do_sample") is False and kwargs.get("temperature") == 0.0:
            kwargs.pop("temperature")  # greedy: transformers warns about a temperature it ignores
        sequence = self.sequences.prompt(self.tok_encode(context), max_new)
        ids = torch.tensor([sequence], device=self.device)
        own = min(len(self.sequences.fixed), len(sequence) - 1)
        groups = torch.full((1, len(sequence)), -1, dtype=torch.long)
        groups[0, own:] = 0
        probe.group(groups.to(self.device), 1)
        out = self.model.generate(input_ids=ids, max_length=len(sequence) + max_new, use_cache=True,
                                  stopping_criteria=stop_sequences_criteria(self.tokenizer, until, len(sequence), 1),
                                  pad_token_id=self.tokenizer.pad_token_id, **kwargs)
        if len(sequence) >= probe.min_queries:
            self.ledger.add(_request_key(request), request_stats(probe.collect(), [0], sequence))
        else:  # a one-token prompt: no prompt pass to read
            probe.group(None)
            self.ledger.first_tokens[sequence[0]] += 1
        text = postprocess_generated_text(self.tok_decode(out[0, len(sequence) :].tolist()), until, None)
        self.cache_hook.add_partial("generate_until", request.args, text)
        return text

    # ---- results -----------------------------------------------------------------------

    def statistics(self) -> ConditionStatistics:
        """Everything the passes measured beside the scores (for `sinkbench run`)."""
        return ConditionStatistics(self.condition, self.identity, self.ledger, self.sequences.head, self.stress,
                                   self.scorer.counts, self.tokenizer)

    def get_model_info(self) -> dict:
        """Merged into lm-eval's results["config"]: identity, condition and sink metrics per task."""
        return {
            "model_num_parameters": self.identity.n_parameters,
            "model_dtype": self.identity.dtype,
            "sinkbench": {
                "version": sinkbench.__version__,
                "model": self.identity.to_dict(),
                "condition": self.condition.name,
                "head_tokens": list(self.sequences.head),
                "stress_prefix": self.stress.describe() if self.stress else None,
                "first_tokens": {f"{self.tokenizer.decode([tid])!r} ({tid})": count
                                 for tid, count in self.ledger.first_tokens.most_common()},
                "truncated_requests": self.scorer.counts.truncated,
                "sidecar": str(self.ledger.sidecar) if self.ledger.sidecar else None,
                "sink_metrics": self.ledger.summary(),
            },
        }


def _request_key(request) -> tuple | None:
    if getattr(request, "task_name", None) is None:
        return None
    return (request.task_name, request.doc_id, request.idx)


def _device(requested) -> str:
    """The device asked for; CUDA asked for but absent means the CPU, with a warning (lm-eval's CLI
    asks for cuda:0 unless told otherwise). `sinkbench run --device cuda` refuses instead, before loading."""
    requested = str(requested or "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        log.warning("%s", cuda_missing(requested) + "; running on the CPU")
        return "cpu"
    return requested


def cuda_missing(requested: str) -> str:
    return (f"device {requested} asked for, but this torch ({torch.__version__}) has no CUDA: install a CUDA build "
            "(TORCH_SPEC=torch bash scripts/setup.sh, or pip install torch from https://pytorch.org), or use --device cpu")


def _rows(batch_size) -> int | None:
    """lm-eval's batch_size: a row cap, or "auto" (the token budget alone)."""
    if batch_size is None or str(batch_size).startswith("auto"):
        return None
    return _positive("batch_size", batch_size)


def _positive(name: str, value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SinkbenchError(f"{name} must be a whole number, got '{value}'") from None
    if number < 1 or (isinstance(value, float) and not value.is_integer()):
        raise SinkbenchError(f"{name} must be a whole number >= 1, got '{value}'")
    return number


def _flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in {"true", "false", "1", "0"}:
        raise SinkbenchError(f"{name} must be true or false, got '{value}'")
    return text in {"true", "1"}
