"""Tiny models and a tiny tokenizer built in code: no network, no downloads."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The board's cache (sinkbench/board/cache.py): the test session's own, not the user's, removed at the end.
if "SINKBENCH_CACHE_DIR" not in os.environ:
    os.environ["SINKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="sinkbench-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SINKBENCH_CACHE_DIR"], ignore_errors=True)

WORDS = (
    "the a an of to and in is was he she it they we you i that this his her on with for as at by from "
    "cat dog bird fish house tree river city king queen man woman child day night sun moon star road "
    "sat ran saw went came said took gave made found red blue green big small old new happy sad "
    "key value passkey number remember what is are 0 1 2 3 4 5 6 7 8 9 . , ? ! : ; \" '"
).split()
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
VOCAB_SIZE = 128  # room above the word list, so models and tokenizer agree on one size


def make_tokenizer(adds_bos: bool = True):
    """A word-level tokenizer over WORDS; prepends <bos> by default when adds_bos."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, decoders
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIALS + list(dict.fromkeys(WORDS)))}
    assert len(vocab) <= VOCAB_SIZE
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    backend.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    if adds_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_config(arch: str):
    """A 2-layer, 64-wide config of the given architecture, vocabulary VOCAB_SIZE."""
    import transformers as tf

    common = dict(vocab_size=VOCAB_SIZE, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    llama_like = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, **common,
    )
    if arch == "llama":
        return tf.LlamaConfig(**llama_like)
    if arch == "qwen2":
        return tf.Qwen2Config(**llama_like)
    if arch == "mistral":
        return tf.MistralConfig(**llama_like, sliding_window=None)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(
            **llama_like, head_dim=16, sliding_window=8, layer_types=["sliding_attention", "full_attention"]
        )
    if arch == "gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=1024, **common)
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=512, **common,
        )
    if arch == "gpt_oss":
        return tf.GptOssConfig(
            hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, num_local_experts=2, num_experts_per_tok=1,
            max_position_embeddings=512, sliding_window=8, layer_types=["sliding_attention", "full_attention"],
            **common,
        )
    raise ValueError(arch)


ARCHS = ["llama", "qwen2", "mistral", "gemma3", "gpt2", "gpt_neox"]


def make_model(arch: str = "llama", seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    # gpt-oss has no SDPA path in transformers (its learned sink logit); eager is its baseline.
    implementation = "eager" if arch == "gpt_oss" else "sdpa"
    model = AutoModelForCausalLM.from_config(tiny_config(arch), attn_implementation=implementation)
    return model.eval()


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A saved tiny Llama + tokenizer folder, loadable by sinkbench.measure.models.load_model."""
    folder = tmp_path / "tiny-llama"
    make_model("llama").save_pretrained(folder)
    make_tokenizer(adds_bos=True).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_loaded(tiny_model_dir):
    from sinkbench.measure.models import load_model

    return load_model(str(tiny_model_dir))


def _data_dir_reason() -> str | None:
    """Why the benchmark data directory cannot be used, or None when it can."""
    from sinkbench.data.datadir import resolve_data_dir
    from sinkbench.errors import SinkbenchError

    try:
        resolve_data_dir()
    except SinkbenchError as err:
        return str(err)
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_data"):
        require_data()


def require_data() -> None:
    """Skip, saying why, where a test (or a fixture) needs the benchmark data directory and it is absent:
    the stress prefix is cut from War and Peace, whose sha256 is checked, so no stand-in will do."""
    reason = _data_dir_reason()
    if reason is not None:
        pytest.skip(f"needs the benchmark data directory: {reason}")
