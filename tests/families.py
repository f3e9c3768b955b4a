"""Tiny random-weight configs of every model family sinkbench claims, with peaked attention (test helper)."""

from __future__ import annotations

import torch

from conftest import VOCAB_SIZE

# 2 layers, 64 wide, 4 query heads over 2 key heads; windows and chunks of 8 keys so that a test
# sequence of 24 tokens crosses them.
BASE = dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, bos_token_id=2, eos_token_id=3, pad_token_id=0,
            initializer_range=0.2)  # 10x the usual: queries and keys large enough for peaked attention
WINDOW = 8
SLIDING_THEN_FULL = dict(sliding_window=WINDOW, layer_types=["sliding_attention", "full_attention"])
LINEAR_DIMS = dict(linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=16)
MOE = dict(num_experts=2, num_experts_per_tok=1, moe_intermediate_size=32)
MAMBA = dict(mamba_d_state=8, mamba_d_conv=4, mamba_expand=2)

# model_type -> what its tiny config changes from BASE (what makes its attention its own).
FAMILIES: dict[str, dict] = {
    "llama": {},
    "mistral": dict(sliding_window=WINDOW),
    "mixtral": dict(sliding_window=WINDOW, num_local_experts=2, num_experts_per_tok=1),
    "qwen2": {},
    "qwen3": dict(head_dim=16),
    "qwen3_moe": dict(head_dim=16, **MOE),
    # hybrids: a linear-attention (or state-space, or convolution) layer before a softmax one
    "qwen3_next": dict(head_dim=16, layer_types=["linear_attention", "full_attention"], shared_expert_intermediate_size=32,
                       **LINEAR_DIMS, **MOE),
    "qwen3_5_text": dict(head_dim=16, layer_types=["linear_attention", "full_attention"], **LINEAR_DIMS),
    "gemma": dict(head_dim=16),
    "gemma2": dict(head_dim=16, query_pre_attn_scalar=16, **SLIDING_THEN_FULL),  # logit softcap 50
    "gemma3_text": dict(head_dim=16, query_pre_attn_scalar=16, **SLIDING_THEN_FULL),
    "gemma4_text": dict(head_dim=16, global_head_dim=16, **SLIDING_THEN_FULL),
    "phi3": {},
    "gpt2": {},
    "gpt_neox": {},
    "opt": dict(ffn_dim=64, word_embed_proj_dim=64),
    "olmo2": {},
    "olmo3": SLIDING_THEN_FULL,
    "cohere2": SLIDING_THEN_FULL,
    "smollm3": dict(no_rope_layers=[1, 0]),
    "granite": {},
    "starcoder2": dict(sliding_window=WINDOW),
    # layer 0 uses RoPE and is chunked; layer 1 is NoPE and full (Llama 4's pattern, every 4th there)
    "llama4_text": dict(head_dim=16, attention_chunk_size=WINDOW, no_rope_layers=[1, 0], num_local_experts=2,
                        num_experts_per_tok=1, intermediate_size_mlp=64),
    "gpt_oss": dict(head_dim=16, num_local_experts=2, num_experts_per_tok=1, **SLIDING_THEN_FULL),  # learned sinks
    # MLA: queries and keys of 16 + 8, values of 8
    "deepseek_v3": dict(num_key_value_heads=4, kv_lora_rank=16, q_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                        v_head_dim=8, n_routed_experts=2, num_experts_per_tok=1, moe_intermediate_size=32,
                        first_k_dense_replace=1, n_group=1, topk_group=1),
    "jamba": dict(attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1, num_experts=2,
                  num_experts_per_tok=1, mamba_dt_rank=8, use_mamba_kernels=False, mamba_d_state=8),
    "falcon_h1": dict(head_dim=16, mamba_d_state=8, mamba_n_heads=4, mamba_d_head=16, mamba_d_ssm=64, mamba_n_groups=1,
                      mamba_chunk_size=8),
    "lfm2": dict(layer_types=["conv", "full_attention"]),
    "nemotron_h": dict(num_hidden_layers=2, layers_block_type=["mamba", "attention"], head_dim=16, mamba_num_heads=4,
                       mamba_head_dim=16, n_groups=1, ssm_state_size=8, chunk_size=8),
    "exaone4": SLIDING_THEN_FULL,
}
# Families whose attention is written inside their own modelling code: refused before loading.
REFUSED = {"bloom": {}, "mpt": dict(d_model=64, n_heads=4, n_layers=2), "falcon": {}}
# Families with layers that have no softmax attention (Falcon-H1 runs a state-space mixer beside
# the attention of every layer instead).
HYBRID = {"qwen3_next", "qwen3_5_text", "jamba", "lfm2", "nemotron_h"}
# Softmax scale times this: near-uniform attention would hide a wrong mask or scale.
SHARPEN = 6.0


def tiny_config(model_type: str):
    from transformers import AutoConfig

    overrides = {**FAMILIES, **REFUSED}[model_type]
    return AutoConfig.for_model(model_type, **{**BASE, **overrides})


def sharpen(model) -> None:
    """Multiply every attention layer's softmax scale by SHARPEN. OPT scales its queries in the
    projection instead (it passes scaling=1.0): its query projection is scaled there."""
    for name, module in model.named_modules():
        if isinstance(getattr(module, "scaling", None), float) and hasattr(module, "layer_idx"):
            if type(module).__name__.startswith("OPT"):
                module.q_proj.weight.data.mul_(SHARPEN)
                module.q_proj.bias.data.mul_(SHARPEN)
            else:
                module.scaling *= SHARPEN


def make_family_model(model_type: str, seed: int = 0):
    """The tiny model of `model_type`, loaded the way sinkbench loads it (sdpa, else eager)."""
    from transformers import AutoModelForCausalLM

    from sinkbench.measure.models import attention_implementation

    config = tiny_config(model_type)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attention_implementation(config))
    sharpen(model)
    return model.eval()
