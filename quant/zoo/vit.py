"""A Vision Transformer whose parameter names and forward match timm's.

``VisionTransformer`` reproduces ``timm.models.vision_transformer.VisionTransformer``
(pre-LN blocks, LayerNorm eps 1e-6, GELU MLP, class token and learned position
embedding added after the class token is prepended) for the subset of options
plain ViT/DeiT checkpoints use, so a timm ``state_dict`` loads into it with
``strict=True`` and gives the same logits — without importing timm, which needs
torchvision.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HardytError

__all__ = ["VisionTransformer", "Attention", "Block", "Mlp", "PatchEmbed", "LN_EPS", "GLOBAL_POOLS"]

LN_EPS = 1e-6
GLOBAL_POOLS = ("token", "avg")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    return (v, v)


#: More parameters than any ViT hardyt could serve: a config past it is corrupt (checked before allocating).
MAX_PARAMETERS = 2**32


def parameter_count(img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio, class_token) -> int:
    """The parameters of a :class:`VisionTransformer` of this (checked) config, counted without building it."""
    (ih, iw), (ph, pw) = _pair(img_size), _pair(patch_size)
    e, hidden, prefix = embed_dim, int(embed_dim * mlp_ratio), int(bool(class_token))
    block = 4 * e + 3 * e * e + 3 * e + e * e + e + 2 * e * hidden + hidden + e
    return (in_chans * ph * pw * e + e + prefix * e + ((ih // ph) * (iw // pw) + prefix) * e + depth * block
            + 2 * e + num_classes * (e + 1))


class PatchEmbed(nn.Module):
    """Non-overlapping patches → tokens: a strided convolution, flattened to (B, N, D)."""

    def __init__(self, img_size, patch_size, in_chans: int, embed_dim: int):
        super().__init__()
        self.img_size, self.patch_size = _pair(img_size), _pair(patch_size)
        self.grid_size = tuple(i // p for i, p in zip(self.img_size, self.patch_size))
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise HardytError(f"input images are {tuple(x.shape[-2:])}, the model expects {self.img_size}")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """timm-compatible ViT (same keyword names, parameter names and forward).

    Parameters
    ----------
    img_size, patch_size : int or (int, int)
    in_chans, num_classes, embed_dim, depth, num_heads : int
        ``num_classes=0`` makes ``head`` an identity (features out), as in timm.
    mlp_ratio : float
        MLP hidden width is ``int(embed_dim * mlp_ratio)``.
    qkv_bias : bool
    class_token : bool
        Prepend a learned class token (it gets a position embedding too).
    global_pool : ``"token"`` or ``"avg"``
        Classify from the class token, or from the mean of the patch tokens.
    fc_norm : bool or None
        ``None`` means ``global_pool == "avg"`` (timm's default). When true the
        final LayerNorm is ``fc_norm`` (after pooling) and ``norm`` is an
        identity; otherwise ``norm`` normalizes every token before pooling.

    Members
    -------
    config : dict
        The keyword arguments above.
    patch_embed.proj, cls_token, pos_embed, blocks[i].{norm1, attn.qkv, attn.proj,
    norm2, mlp.fc1, mlp.fc2}, norm, fc_norm, head — timm's names.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, class_token: bool = True, global_pool: str = "token",
                 fc_norm: bool | None = None):
        super().__init__()
        _check_config(img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_ratio,
                      class_token, global_pool)
        # The keyword arguments, as timm names them: `hardyt convert` records them to rebuild the model.
        self.config = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                           embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                           qkv_bias=qkv_bias, class_token=class_token, global_pool=global_pool, fc_norm=fc_norm)
        self.num_classes, self.embed_dim, self.global_pool = num_classes, embed_dim, global_pool
        self.num_prefix_tokens = 1 if class_token else 0
        use_fc_norm = global_pool == "avg" if fc_norm is None else bool(fc_norm)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        embed_len = self.patch_embed.num_patches + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, embed_dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)])
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self):
        # timm's default ("jax"-free) init: trunc-normal Linear weights, zero biases, unit LayerNorm
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, self.num_prefix_tokens:].mean(dim=1) if self.global_pool == "avg" else x[:, 0]
        return self.head(self.fc_norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _check_config(img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_ratio,
                  class_token, global_pool):
    img, patch = _pair(img_size), _pair(patch_size)
    for name, v in (("in_chans", in_chans), ("embed_dim", embed_dim), ("depth", depth), ("num_heads", num_heads),
                    *(("img_size", i) for i in img), *(("patch_size", p) for p in patch)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise HardytError(f"config {name}: must be a positive integer, got {v!r}")
    if not isinstance(num_classes, int) or num_classes < 0:
        raise HardytError(f"config num_classes: must be an integer >= 0, got {num_classes!r}")
    if any(i % p for i, p in zip(img, patch)):
        raise HardytError(f"config img_size {img_size} is not a multiple of patch_size {patch_size}")
    if embed_dim % num_heads:
        raise HardytError(f"config num_heads: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    if not (isinstance(mlp_ratio, (int, float)) and 0 < mlp_ratio < float("inf") and int(embed_dim * mlp_ratio) >= 1):
        raise HardytError(f"config mlp_ratio: must be positive, got {mlp_ratio!r}")
    if global_pool not in GLOBAL_POOLS:
        raise HardytError(f"config global_pool: must be one of {GLOBAL_POOLS}, got {global_pool!r}")
    if global_pool == "token" and not class_token:
        raise HardytError("config global_pool 'token' needs class_token=true")
    n = parameter_count(img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio, class_token)
    if n > MAX_PARAMETERS:
        raise HardytError(f"config describes a ViT of {n:.3g} parameters (more than {MAX_PARAMETERS:.3g}): corrupt?")
