"""catvae: does synthetic data from (cross-attention) VAEs help a CNN on imbalanced medical images?

The library behind the Snakemake study. Every stage is importable and testable without Snakemake;
`workflow/scripts/` only adapts the `snakemake` object to calls into this package.
"""

__version__ = "0.1.0"
