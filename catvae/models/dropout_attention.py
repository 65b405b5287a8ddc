"""Attention with dropout on its weights, without keeping the attention matrix (the CPU ``faithful`` path).

Keras' ``MultiHeadAttention(dropout=p)`` computes ``dropout(softmax(Q K^T / sqrt(d))) V``: dropout with rate
``p`` on the attention *weights*, kept weights scaled by ``1/(1-p)``. PyTorch's fused CPU kernels do not
support that, and its unfused path keeps scores, weights and mask for every (image, head) pair: 4 GB at the
paper preset. This module computes the same function the way FlashAttention does:

* (image, head) pairs are processed a few at a time (``chunk``), so only a few 256 x 1,024 weight blocks
  exist at once, in buffers reused from block to block;
* each pair's dropout mask comes from a counter-based generator (Philox 4x64 keyed by a seed drawn from
  torch's default generator, counter starting at pair * 2**64), so it is a pure function of (seed, pair,
  position): the same whatever the block size or the thread that drew it, and reproducible under
  ``torch.manual_seed``. The forward pass keeps it bit-packed (1/8 byte per weight, 17 MB at the paper
  preset) so the backward pass applies the identical mask without drawing it again;
* the backward pass recomputes each block's scores and softmax from Q and K.

A weight is dropped when its 16 random bits fall below the threshold's high half; the one weight in 65,536
whose bits equal it is decided by 16 more bits (a hash of its position), so the drop probability is
``round(p * 2**32) / 2**32``: ``p`` to within 2^-33, finer than a float32 uniform draw resolves it.

Only the forward/backward maths lives here; ``catvae.models.attention`` decides when to use it (CPU,
training, ``p > 0``); on CUDA PyTorch's fused kernels take ``dropout_p`` themselves.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from catvae.errors import CatvaeError

DEFAULT_CHUNK = 2                     # heads of one image per block: 1-2 measured fastest at the paper preset
_MASK64 = (1 << 64) - 1
_POOLS: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_POOLS.clear)      # a forked child has none of the parent's threads


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of threads per size, kept so that a call does not start threads."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="catvae-dropout")
    return _POOLS[workers]


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (wrapping arithmetic is defined for NumPy unsigned arrays)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def run_blocks(body: Callable[..., None], blocks: Sequence[tuple], workers: int,
               make_buffers: Callable[[], list[Tensor]] = list) -> None:
    """Call ``body(*block, buffers)`` for every block (also the blockwise ``explicit`` attention at inference).

    With ``workers > 1`` the blocks are shared among that many threads, each with its own buffers and
    single-threaded torch ops (torch and NumPy release the GIL). A block's ops are small, and an OpenMP
    fork/join per small op costs little on an idle machine but a scheduler time slice per op on a busy
    one (measured: 8x slower in a full training step at load 12 on 2 cores); threads that each run whole
    blocks synchronise once per call.
    """
    if workers <= 1 or len(blocks) == 1:
        buffers = make_buffers()
        for block in blocks:
            body(*block, buffers)
        return
    queue, lock, threads = iter(blocks), threading.Lock(), torch.get_num_threads()

    def work(_: int) -> None:
        torch.set_num_threads(1)                  # this thread's OpenMP and MKL settings (thread-local)
        buffers = make_buffers()
        with torch.no_grad():                     # grad mode is per thread; the caller's is off here
            while True:
                with lock:
                    block = next(queue, None)
                if block is None:
                    return
                body(*block, buffers)

    try:
        list(_pool(workers).map(work, range(workers)))
    finally:
        torch.set_num_threads(threads)            # the default new threads start with, and this thread's


class DropoutMasks:
    """The dropout decisions of one attention call: a pure function of (seed, pair, query, key).

    ``draw(first, keep, packed)`` writes the masks of pairs ``first, first+1, ...`` into ``keep`` (uint8
    ``[count, lq, lk]``: 1 kept, 0 dropped) and, bit-packed, into ``packed`` (uint8 ``[count, ceil(lq*lk/8)]``,
    1/8 byte per weight: 17 MB at the paper preset), which is what the backward pass keeps and unpacks.
    The same seed gives the same masks whatever the block size or thread count.
    """

    def __init__(self, p: float, seed: int) -> None:
        if not 0.0 <= p < 1.0:
            raise CatvaeError(f"attention dropout rate must be in [0, 1), got {p}")
        self.p, self.seed = p, seed & _MASK64
        threshold = round(p * 2**32)                     # drop iff a uniform 32-bit draw < threshold
        self.rate = threshold / 2**32
        self.hi, self.lo = divmod(threshold, 2**16)      # 16 random bits decide unless they equal hi
        self._tie_key = np.uint64(int(_mix64(np.array([self.seed ^ 0x5DEECE66D], dtype=np.uint64))[0]))

    def draw(self, first: int, keep: Tensor, packed: Tensor) -> Tensor:
        keep_np, packed_np = keep.numpy().reshape(keep.shape[0], -1).view(np.bool_), packed.numpy()
        for j in range(keep.shape[0]):
            self._keep_pair(first + j, keep_np[j])
            packed_np[j] = np.packbits(keep_np[j])
        return keep

    @staticmethod
    def unpack(packed: Tensor, keep: Tensor) -> Tensor:
        """Inverse of the packing in ``draw``: ``keep`` [count, lq, lk] uint8 from ``packed`` [count, bytes]."""
        keep_np, packed_np = keep.numpy().reshape(keep.shape[0], -1), packed.numpy()
        for j in range(keep.shape[0]):
            keep_np[j] = np.unpackbits(packed_np[j], count=keep_np.shape[1])
        return keep

    def _keep_pair(self, pair: int, keep: np.ndarray) -> None:
        # Philox 4x64 keyed by the seed; the counter starts at pair * 2**64, so pairs never share draws.
        n = keep.size
        bits = np.random.Philox(key=self.seed, counter=pair << 64).random_raw((n + 3) // 4).view(np.uint16)[:n]
        self.decide(bits, pair, keep)

    def decide(self, bits: np.ndarray, pair: int, keep: np.ndarray) -> None:
        """Keep a weight iff its 16 random bits (uint16) > hi, or == hi and 16 more bits >= lo."""
        if self.hi == 2**16:                             # p rounds up to 1 (p > 1 - 2**-33): everything dropped
            keep[:] = False
            return
        np.greater_equal(bits, self.hi, out=keep)
        if self.lo:
            ties = np.flatnonzero(bits == self.hi)
            if ties.size:
                # Ties are one weight in 65,536, so their extra bits come from a hash of (seed, pair,
                # position) rather than from a second random stream.
                index = ties.astype(np.uint64) + np.uint64(pair) * np.uint64(bits.size)
                extra = _mix64(index ^ self._tie_key) & np.uint64(0xFFFF)
                keep[ties] = extra >= np.uint64(self.lo)


class _DropoutAttention(torch.autograd.Function):
    """softmax(Q K^T * scale), dropout(p) with 1/(1-p) scaling, times V; blockwise, recomputing in backward.

    Tensors are ``[B, H, L, d]`` with any strides (the attention module's heads are a transposed view of
    its projections; reading them in place saves copying K and V). A block is one image's next ``chunk``
    heads. The forward pass keeps Q, K, V, the output and the bit-packed masks; the backward pass
    recomputes each block's scores and softmax and unpacks its mask. Outputs and gradients are laid out
    ``[B, L, H, d]`` (returned as transposed views), so the module's head merge is free. Each thread
    allocates its ``chunk x Lq x Lk`` buffers once per call: a fresh multi-megabyte buffer per block costs
    page faults, more than the block's arithmetic.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, p: float, seed: int, chunk: int, workers: int) -> Tensor:
        batch, heads, lq, d = q.shape
        lk = k.shape[2]
        scale = 1.0 / math.sqrt(d)
        masks = DropoutMasks(p, seed) if p > 0 else None
        qs = q * scale
        out = q.new_empty(batch, lq, heads, v.shape[-1]).transpose(1, 2)
        packed = torch.empty(batch * heads if masks else 0, (lq * lk + 7) // 8, dtype=torch.uint8)

        def block(i: int, h0: int, h1: int, buffers: list[Tensor]) -> None:
            s, w, keep = (t[: h1 - h0] for t in buffers)
            torch.bmm(qs[i, h0:h1], k[i, h0:h1].transpose(1, 2), out=s)
            torch._softmax(s, -1, False, out=w)          # the out= kernel itself; torch.softmax(out=) copies
            if masks is not None:
                first = i * heads + h0
                w.mul_(masks.draw(first, keep, packed[first: first + h1 - h0]))
            torch.baddbmm(out[i, h0:h1], w, v[i, h0:h1], beta=0.0, alpha=1.0 / (1.0 - p), out=out[i, h0:h1])

        run_blocks(block, _blocks(batch, heads, chunk), workers, lambda: _buffers(q, min(chunk, heads), lq, lk, 2))
        ctx.save_for_backward(qs, k, v, out, packed)
        ctx.p, ctx.chunk, ctx.workers, ctx.scale = p, chunk, workers, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        qs, k, v, out, packed = ctx.saved_tensors
        p, scale = ctx.p, ctx.scale
        batch, heads, lq, _ = qs.shape
        lk = k.shape[2]
        keep_scale = 1.0 / (1.0 - p)
        # sum_k P_ik dP_ik = sum_k W_ik dW_ik = rowsum(dO * O): the softmax backward's row term, no weights needed.
        row = (grad_out * out).sum(dim=-1, keepdim=True)
        dq, dk, dv = (t.new_empty(t.shape[0], t.shape[2], t.shape[1], t.shape[3]).transpose(1, 2) for t in (qs, k, v))

        def block(i: int, h0: int, h1: int, buffers: list[Tensor]) -> None:
            s, prob, ds, keep = (t[: h1 - h0] for t in buffers)
            q_, k_, v_, do = qs[i, h0:h1], k[i, h0:h1], v[i, h0:h1], grad_out[i, h0:h1]
            torch.bmm(q_, k_.transpose(1, 2), out=s)
            torch._softmax(s, -1, False, out=prob)
            kept = prob
            if p > 0:
                first = i * heads + h0
                kept = torch.mul(prob, DropoutMasks.unpack(packed[first: first + h1 - h0], keep), out=s)
            torch.baddbmm(dv[i, h0:h1], kept.transpose(1, 2), do, beta=0.0, alpha=keep_scale, out=dv[i, h0:h1])
            # dS = P * (dP - row), dP = M * dW / (1-p), dW = dO V^T:  dS = kept * dW / (1-p) - P * row
            torch.baddbmm(ds, do, v_.transpose(1, 2), beta=0.0, alpha=keep_scale, out=ds)
            ds.mul_(kept).addcmul_(prob, row[i, h0:h1], value=-1.0)
            torch.baddbmm(dq[i, h0:h1], ds, k_, beta=0.0, alpha=scale, out=dq[i, h0:h1])
            torch.bmm(ds.transpose(1, 2), q_, out=dk[i, h0:h1])

        run_blocks(block, _blocks(batch, heads, ctx.chunk), ctx.workers,
                    lambda: _buffers(qs, min(ctx.chunk, heads), lq, lk, 3))
        return dq, dk, dv, None, None, None, None


def _blocks(batch: int, heads: int, chunk: int) -> list[tuple[int, int, int]]:
    """(image, first head, end head) for every block of at most ``chunk`` heads of one image."""
    return [(i, h, min(h + chunk, heads)) for i in range(batch) for h in range(0, heads, chunk)]


def _buffers(like: Tensor, count: int, lq: int, lk: int, floats: int) -> list[Tensor]:
    """``floats`` weight-block buffers and one uint8 mask buffer, allocated once per call and thread."""
    return [like.new_empty(count, lq, lk) for _ in range(floats)] + [torch.empty(count, lq, lk, dtype=torch.uint8)]


def dropout_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, *, seed: int | None = None,
                      chunk: int = DEFAULT_CHUNK, workers: int | None = None) -> Tensor:
    """``dropout(softmax(q k^T / sqrt(d)), dropout_p) v`` for ``[B, H, L, d]`` tensors, memory-efficiently.

    Always applies dropout (call it only in training). ``seed`` fixes the mask; by default it is drawn from
    torch's default CPU generator, so ``torch.manual_seed`` makes a run repeatable. ``workers`` threads
    share the blocks (default: torch's intra-op threads); the result does not depend on it or on ``chunk``.
    """
    if not 0.0 <= dropout_p < 1.0:
        raise CatvaeError(f"attention dropout rate must be in [0, 1), got {dropout_p}")
    if q.device.type != "cpu":
        raise CatvaeError("dropout_attention is the CPU path; on CUDA use scaled_dot_product_attention(dropout_p=...)")
    if not q.dim() == k.dim() == v.dim() == 4:
        raise CatvaeError(f"dropout_attention takes [B, H, L, d] tensors, got {list(q.shape)}, {list(k.shape)}")
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return _DropoutAttention.apply(q, k, v, float(dropout_p), seed, max(1, int(chunk)),
                                   workers or torch.get_num_threads())
