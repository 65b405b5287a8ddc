"""Generative models: the paper's VAE and CAT-VAE (ported layer by layer from the Keras notebooks;
docs/DEPARTURES.md lists what differs) and the conditional VAE."""

from catvae.models.attention import ATTENTION_MODES, CrossAttentionBlock, MultiHeadCrossAttention, explicit_attention
from catvae.models.cvae import ConditionalVAE
from catvae.models.factory import build_generator, count_parameters
from catvae.models.vae import VAE, CatVAE, GenerativeModel

__all__ = [
    "ATTENTION_MODES", "CatVAE", "ConditionalVAE", "CrossAttentionBlock", "GenerativeModel",
    "MultiHeadCrossAttention", "VAE", "build_generator", "count_parameters", "explicit_attention",
]
