"""A validated config -> each step's settings (catvae/vocabulary/steps.py), and the enums and defaults they read from
the schema."""

from __future__ import annotations

from catvae.config import schema_enum


def test_step_settings_from_a_validated_config():
    """One config -> step-arguments mapping for the rules' params and the CLI (catvae/vocabulary/steps.py)."""
    from catvae.config import validate_config
    from catvae.vocabulary import steps

    cfg = validate_config({"generators": {"models": ["vae", "catvae", "ddpm"]}})
    assert steps.tstr_images(cfg) == "largest"
    assert steps.tstr_images(validate_config({"quality": {"tstr_images": 7}})) == 7
    assert steps.synthesis_option(cfg, "catvae", "context") == cfg["generators"]["catvae"]["context"]
    assert steps.synthesis_option(cfg, "ddpm", "context") == "mean"  # the CAT-VAE's schema default; unread there
    assert steps.synthesis_option(cfg, "ddpm", "sampling") == {}
    assert not set(steps.training_options(cfg, "catvae")) & set(steps.SYNTHESIS_ONLY_KEYS)
    assert steps.paper_training_options(cfg, "vae")["selection"] == "last"
    assert list(steps.classifier_options(cfg)) == list(steps.CLASSIFIER_KEYS)


def test_enums_and_the_sampling_default_come_from_the_schema():
    from catvae.config import defaults
    from catvae.data.policy import NONFINITE, ON_ERROR
    from catvae.data.brats.slicing import SELECTION_MODES
    from catvae.generators.latents import DEFAULT_SAMPLING, SAMPLING_MODES

    assert DEFAULT_SAMPLING == defaults("generators", "vae", "sampling") == {
        "mode": "prior", "components": 10, "covariance": "full"}
    assert SAMPLING_MODES == ("prior", "gmm")
    assert ON_ERROR == schema_enum("dataset", "on_error") and NONFINITE == schema_enum("dataset", "nonfinite")
    assert SELECTION_MODES == ("center", "all", "stride")
