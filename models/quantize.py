"""An int8 copy of an image tower: dynamic quantisation of its transformer blocks.

Only the linear layers inside the stack of repeated blocks are quantised: they hold nearly
all the work, while heads and poolers are cheap and more fragile (SigLIP's attention-pooling
head, quantised, alone drops the cosine to float32 from 0.9997 to 0.974). open_clip's blocks
use nn.MultiheadAttention, whose projections quantize_dynamic skips; they are first
replaced by the same attention written with plain nn.Linear layers, so that the query, key
and value projections (a third of the block's work) are quantised too.

Weights are quantised with one scale per output channel, not one per layer: as fast, and
far less sensitive to the weights themselves. Over four random initialisations of
ViT-B-32-SigLIP2-256, one scale per layer gave a worst probe cosine of 0.9995, 0.9980,
0.9922 and 0.9673 (the last two refused by the check at load); one per channel gave
0.9997 for all four (scripts/bench_embed --inits).

Activations are quantised per call with one scale for the whole batch (fbgemm), so a
vector depends slightly on its batch mates: cosine 0.9996 at worst between a batch of 32
and one image at a time (ViT-B-32), the order of the int8 to float32 difference itself.
Quantising image by image would make vectors independent of batching, for 20 % of speed.
"""

from __future__ import annotations

import copy
import warnings
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn


class NoBlocksError(ValueError):
    """The tower has no stack of repeated blocks to quantise (e.g. a convolutional net)."""


class SelfAttention(nn.Module):
    """nn.MultiheadAttention (batch first, self-attention) with nn.Linear projections."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        width = attention.embed_dim
        self.heads = attention.num_heads
        has_bias = attention.in_proj_bias is not None
        self.qkv = nn.Linear(width, 3 * width, bias=has_bias)
        self.qkv.weight = nn.Parameter(attention.in_proj_weight.detach().clone())
        if has_bias:
            self.qkv.bias = nn.Parameter(attention.in_proj_bias.detach().clone())
        out = attention.out_proj
        self.out_proj = nn.Linear(width, width, bias=out.bias is not None)
        self.out_proj.weight = nn.Parameter(out.weight.detach().clone())
        if out.bias is not None:
            self.out_proj.bias = nn.Parameter(out.bias.detach().clone())

    @staticmethod
    def can_replace(attention: nn.Module) -> TypeGuard[nn.MultiheadAttention]:
        return (
            isinstance(attention, nn.MultiheadAttention)
            and attention.batch_first
            and attention._qkv_same_embed_dim
            and attention.bias_k is None
            and not attention.add_zero_attn
        )

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        if key is not query or value is not query or need_weights:
            raise ValueError("SelfAttention computes self-attention without weights only")
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            attn_mask = ~attn_mask  # True means "masked" for MultiheadAttention, "kept" for SDPA
        batch, length, width = query.shape
        qkv = self.qkv(query).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(mixed.transpose(1, 2).reshape(batch, length, width)), None


def quantized_copy(tower: nn.Module) -> nn.Module:
    """A copy of `tower` whose transformer blocks run their linear layers in int8."""
    tower = copy.deepcopy(tower)
    stacks = block_stacks(tower)
    if not stacks:
        raise NoBlocksError(f"{type(tower).__name__} has no stack of transformer blocks")
    for stack in stacks:
        _replace_attention(stack)
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, but still the only
            # dynamic int8 path that needs no extra package; int8_available() guards it.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            torch.ao.quantization.quantize_dynamic(
                stack,
                {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                dtype=torch.qint8,
                inplace=True,
            )
    return tower.eval()


def block_stacks(module: nn.Module) -> list[nn.Module]:
    """The outermost ModuleList/Sequential of two or more blocks of one type with linear layers."""
    found: list[nn.Module] = []
    for child in module.children():
        if _is_block_stack(child):
            found.append(child)
        else:
            found.extend(block_stacks(child))
    return found


def _is_block_stack(module: nn.Module) -> bool:
    if not isinstance(module, nn.ModuleList | nn.Sequential) or len(module) < 2:
        return False
    blocks = list(module)
    if len({type(block) for block in blocks}) != 1:
        return False
    return any(isinstance(layer, nn.Linear) for layer in blocks[0].modules())


def _replace_attention(module: nn.Module) -> None:
    for name, child in module.named_children():
        if SelfAttention.can_replace(child):
            setattr(module, name, SelfAttention(child))
        else:
            _replace_attention(child)
