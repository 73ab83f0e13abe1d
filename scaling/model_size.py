"""Parameter count N of an MPT model: the one definition of N used everywhere in the project.

Convention (the paper's Table 4): N counts every trainable parameter, the token embedding
included (MPT ties input and output embeddings, so it counts once); there are no learned
position embeddings (ALiBi) and, with ``no_bias``, no biases. FLOPs use the same N
(training 6·N·D, inference 2·N·D, see ``scaling.law``).
"""

from __future__ import annotations

from scaling.errors import InputError


def mpt_param_count(
    d_model: int,
    n_heads: int,
    n_layers: int,
    vocab_size: int,
    kv_n_heads: int | None = None,
    expansion_ratio: float = 4,
    no_bias: bool = True,
) -> int:
    """Parameters (count) of an MPT decoder with grouped-query attention and tied embeddings."""
    kv_n_heads = n_heads if kv_n_heads is None else kv_n_heads
    if min(d_model, n_heads, n_layers, vocab_size, kv_n_heads) <= 0:
        raise InputError("model sizes must be positive integers")
    if d_model % n_heads or n_heads % kv_n_heads:
        raise InputError(f"d_model {d_model} must divide by n_heads {n_heads}, "
                         f"and n_heads by kv_n_heads {kv_n_heads}")
    head_dim = d_model // n_heads
    ffn = int(expansion_ratio * d_model)
    qkv_out = d_model + 2 * kv_n_heads * head_dim
    attention = d_model * qkv_out + d_model * d_model
    mlp = 2 * d_model * ffn
    norms = 2 * d_model  # two LayerNorm weights per block
    if not no_bias:
        attention += qkv_out + d_model
        mlp += ffn + d_model
        norms += 2 * d_model
    final_norm = d_model if no_bias else 2 * d_model
    return n_layers * (attention + mlp + norms) + vocab_size * d_model + final_norm
