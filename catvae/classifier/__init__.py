"""The classifier stage: the reference's CNN, the training-set arms, training and held-out evaluation;
the reference's own protocol is `catvae.classifier.paper_protocol`.

The public entry points are re-exported here so the CLI and Snakemake scripts import one place.
"""

from catvae.classifier.arms import TrainingSet, build_training_set, parse_arm
from catvae.classifier.cnn import build_cnn
from catvae.classifier.train import run_arm
from catvae.models import count_parameters

__all__ = ["TrainingSet", "build_cnn", "build_training_set", "count_parameters", "parse_arm", "run_arm"]
