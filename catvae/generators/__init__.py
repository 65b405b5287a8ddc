"""Generator stage: train (checkpoint + resume), synthesise per class, evaluate quality per model and class.

- `conditioning`: which rows of the split a generator sees and the cvae's class / modality codes, shared by
  training, synthesis and evaluation so all three agree.
- `train`: `train_generator` (vae/catvae per class, cvae over all classes).
- `checkpoint`: the one checkpoint format (final and resume), RNG capture/restore, rebuilding the model.
- `synthesis`: `synthesise` once for the largest target, `targets_for` (synthetic count for a target).
- `evaluate`: `evaluate_generator` (quality.json) and `export_latents` (cvae latent means for the figure).

Submodules are imported lazily by callers (`from catvae.generators.train import train_generator`) so that
importing the package does not pull in the models and metrics.
"""
