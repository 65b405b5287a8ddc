"""Generative models: the paper's VAE and CAT-VAE (ported layer by layer from the Keras notebooks;
docs/DEPARTURES.md lists what differs), the conditional VAE, and this project's diffusion comparator (MONAI,
imported only when one is built)."""

from catvae.models.attention import ATTENTION_MODES, CrossAttentionBlock, MultiHeadCrossAttention, explicit_attention
from catvae.models.cvae import ConditionalVAE
from catvae.models.diffusion import DiffusionModel
from catvae.models.factory import build_generator, count_parameters
from catvae.models.vae import VAE, CatVAE, GenerativeModel

__all__ = [
    "ATTENTION_MODES", "CatVAE", "ConditionalVAE", "CrossAttentionBlock", "DiffusionModel", "GenerativeModel",
    "MultiHeadCrossAttention", "VAE", "build_generator", "count_parameters", "explicit_attention",
]
