"""The CAT-VAE cross-attention block: Keras ``MultiHeadAttention(num_heads=8, key_dim=64, dropout=0.1)``.

The reference block has three dropouts of rate 0.1 (Keras): (1) ``MultiHeadAttention(dropout=0.1)`` on the
attention *weights* (after the softmax); (2) ``Dropout`` on the attention output, before
``LayerNorm(query + attention)``; (3) ``Dropout`` as the last layer of the feed-forward branch, before the
second residual + LayerNorm. (2) and (3) are ordinary ``nn.Dropout`` layers, present in every mode. Only (1)
differs between the modes, recorded in ``mode`` so outputs can say which ran:

* ``faithful``: Keras semantics, weight dropout while training. On a CPU,
  ``catvae.models.dropout_attention`` (blockwise, bit-packed mask, scores recomputed in backward: the fused
  kernel's memory at close to its speed); on CUDA, ``scaled_dot_product_attention(dropout_p=p)``, whose
  fused GPU kernels support dropout.
* ``faithful-sdpa``: the same semantics through ``scaled_dot_product_attention(dropout_p=p)`` on every
  device. On a CPU any ``dropout_p > 0`` drops to PyTorch's unfused math path (about 3x slower, 2x the peak
  memory at the paper preset); kept for benchmarking.
* ``fused``: SDPA without weight dropout (a documented departure from the reference, the fastest).
* ``explicit``: the same maths as ``faithful`` written out (softmax(QK^T/sqrt(d))V), float32; the baseline
  for the equality tests and for ``bench/train_generators.py``.

In eval mode there is no dropout and ``faithful``, ``faithful-sdpa`` and ``fused`` run the same fused kernel;
``explicit`` still writes the maths out, on a CPU without gradients in cache-sized blocks (``explicit_attention``).
A context expanded from one image (batch stride 0, as synthesis passes the class context) is treated as the
shared context it is: its keys and values are projected once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from catvae.config import schema_enum
from catvae.errors import CatvaeError
from catvae.models.dropout_attention import dropout_attention, run_blocks
from catvae.models.encoder import glorot_uniform_, keras_dense_init_

ATTENTION_MODES = schema_enum("generators", "catvae", "attention")


def check_attention_mode(mode: str, key: str = "generators.catvae.attention") -> str:
    """Validate an attention mode from the config, naming the config key on error."""
    if mode not in ATTENTION_MODES:
        raise CatvaeError(f"config key '{key}' must be one of {', '.join(ATTENTION_MODES)}; got {mode!r}")
    return mode


#: Attention weights per block (2 MB of float32) when ``explicit_attention`` runs without gradients or dropout.
EXPLICIT_BLOCK = 1 << 19


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, training: bool = False) -> Tensor:
    """softmax(Q K^T / sqrt(d)) V with dropout on the weights, as Keras computes it. Shapes [B, H, L, d].

    The float32 reference: autocast is switched off inside and half-precision inputs are upcast, so under mixed
    precision the products stay float32 (float64 inputs stay float64).

    On a CPU without gradients and without dropout (generation) the same expression is evaluated block by
    block: one head of a few images or query rows, about ``EXPLICIT_BLOCK`` weights, the blocks shared among
    torch's threads (``run_blocks``). Each query row's softmax is its own, so the function is the same (bit
    for bit, as measured here); but a batch's weights (2 GB for 256 images at the paper preset) never exist
    at once, each block's softmax runs in cache, and a busy machine costs one thread synchronisation per call
    instead of one per small op: generation in this mode runs at about the fused kernel's speed.
    """
    dtype = torch.promote_types(q.dtype, torch.float32)
    with torch.autocast(q.device.type, enabled=False):
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        if torch.is_grad_enabled() or (training and dropout_p > 0) or q.device.type != "cpu":
            return _softmax_attention(q, k, v, dropout_p, training)
        out = q.new_empty(*q.shape[:-1], v.shape[-1])

        def block(images: slice, head: int, rows: slice, _: list) -> None:
            kv = slice(None) if k.shape[0] == 1 else images
            out[images, head, rows] = _softmax_attention(q[images, head, rows], k[kv, head], v[kv, head], 0.0, False)

        run_blocks(block, _query_blocks(q.shape[0], q.shape[1], q.shape[2], k.shape[2]), torch.get_num_threads())
        return out


def _softmax_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float, training: bool) -> Tensor:
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    weights = F.dropout(scores.softmax(dim=-1), p=dropout_p, training=training)
    return weights @ v


def _query_blocks(batch: int, heads: int, length: int, keys: int) -> list[tuple[slice, int, slice]]:
    """(images, head, query rows) covering ``[batch, heads, length]`` in blocks of about ``EXPLICIT_BLOCK`` weights."""
    rows = max(1, EXPLICIT_BLOCK // keys)
    if rows < length:
        return [(slice(i, i + 1), h, slice(r, r + rows))
                for i in range(batch) for h in range(heads) for r in range(0, length, rows)]
    images = rows // length
    return [(slice(i, i + images), h, slice(None)) for i in range(0, batch, images) for h in range(heads)]


def attend(q: Tensor, k: Tensor, v: Tensor, mode: str, dropout_p: float) -> Tensor:
    """Scaled dot-product attention of ``[B, H, L, d]`` tensors in one of ``ATTENTION_MODES``.

    ``dropout_p`` is the weight-dropout rate to apply now (0 in eval mode); ``fused`` ignores it.
    """
    if mode == "explicit":
        return explicit_attention(q.float(), k.float(), v.float(), dropout_p, dropout_p > 0).to(q.dtype)
    if mode == "fused" or dropout_p == 0:
        return F.scaled_dot_product_attention(q, k, v)
    if mode == "faithful" and q.device.type == "cpu":
        return dropout_attention(q, k, v, dropout_p)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


class MultiHeadCrossAttention(nn.Module):
    """Queries from one token set, keys and values from another; ``num_heads`` heads of ``key_dim`` each.

    Projections are ``d_model -> num_heads*key_dim`` with bias (q, k, v) and back with bias, as Keras'
    EinsumDense layers; at d_model 64, 8 heads x 64 that is 132,672 parameters.

    A context with batch size 1 is shared by every query image (generation from one class context): its
    keys and values are projected once, not once per image, and without weight dropout the images'
    queries attend to them as one long query sequence (each query row's softmax is its own, so this is
    the same function as attending image by image). A context expanded to the batch (batch stride 0,
    what ``expand`` makes and synthesis passes) is one context, and is treated as shared.
    """

    def __init__(self, d_model: int = 64, num_heads: int = 8, key_dim: int = 64, dropout: float = 0.1,
                 mode: str = "faithful") -> None:
        super().__init__()
        self.num_heads, self.key_dim, self.dropout = num_heads, key_dim, dropout
        self.mode = check_attention_mode(mode)
        inner = num_heads * key_dim
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d_model, inner) for _ in range(3))
        self.out_proj = nn.Linear(inner, d_model)
        # Keras kernels are (d_model, heads, key_dim) and (heads, key_dim, d_model); its fan rule for
        # rank-3 kernels multiplies the leading axis into both fans.
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            glorot_uniform_(proj.weight, num_heads * d_model, key_dim * d_model)
            nn.init.zeros_(proj.bias)
        glorot_uniform_(self.out_proj.weight, key_dim * num_heads, d_model * num_heads)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.key_dim).transpose(1, 2)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        """query [B, Lq, d_model], context [B or 1, Lk, d_model] -> [B, Lq, d_model]."""
        b, lq, _ = query.shape
        if context.shape[0] not in (1, b):
            raise CatvaeError(f"cross-attention context batch must be 1 or {b}, got {context.shape[0]}")
        if context.shape[0] > 1 and context.stride(0) == 0:   # one context expanded to the batch: shared
            context = context[:1]
        p = self.dropout if self.training and self.mode != "fused" else 0.0
        k, v = self._heads(self.k_proj(context)), self._heads(self.v_proj(context))
        if context.shape[0] == 1 and b > 1 and p == 0:          # shared context, no weight dropout: fold
            out = attend(self._heads(self.q_proj(query.reshape(1, b * lq, -1))), k, v, self.mode, p)
        else:
            out = attend(self._heads(self.q_proj(query)), k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1),
                         self.mode, p)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, self.num_heads * self.key_dim))


class CrossAttentionBlock(nn.Module):
    """Attention, Dropout, residual + LayerNorm(1e-6); feed-forward 64 -> 256 ReLU -> 64, Dropout, residual +
    LayerNorm(1e-6): the Keras block with its three dropouts (the first inside the attention).

    166,016 parameters at the reference sizes, the difference between the CAT-VAE and VAE decoders.
    """

    def __init__(self, d_model: int = 64, num_heads: int = 8, key_dim: int = 64, ff_dim: int = 256,
                 dropout: float = 0.1, eps: float = 1e-6, mode: str = "faithful") -> None:
        super().__init__()
        self.attention = MultiHeadCrossAttention(d_model, num_heads, key_dim, dropout, mode)
        self.attention_dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.ff1 = keras_dense_init_(nn.Linear(d_model, ff_dim))
        self.ff2 = keras_dense_init_(nn.Linear(ff_dim, d_model))
        self.ff_dropout = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)

    @property
    def mode(self) -> str:
        return self.attention.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.attention.mode = check_attention_mode(value)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        x = self.norm1(query + self.attention_dropout(self.attention(query, context)))
        return self.norm2(x + self.ff_dropout(self.ff2(F.relu(self.ff1(x)))))
