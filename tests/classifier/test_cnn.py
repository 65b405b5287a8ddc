"""The CNN must match the Keras reference's parameter counts exactly, and its heads must have the right size."""

import pytest
import torch

from catvae.classifier.cnn import build_cnn, logits_to_probs
from catvae.errors import CatvaeError
from catvae.models import count_parameters


def test_parameter_count_three_classes_at_paper_size():
    assert count_parameters(build_cnn(224, 3, 3)) == 11_169_347


def test_parameter_count_two_classes_one_sigmoid_unit_at_paper_size():
    assert count_parameters(build_cnn(224, 3, 2)) == 11_169_089


def test_two_classes_have_one_output_unit_and_probabilities_sum_to_one():
    model = build_cnn(64, 1, 2).eval()
    logits = model(torch.rand(4, 1, 64, 64))
    assert logits.shape == (4, 1)
    probs = logits_to_probs(logits, 2)
    assert probs.shape == (4, 2)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4))


def test_three_classes_have_one_unit_per_class():
    model = build_cnn(32, 3, 3).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_too_small_image_or_one_class_is_rejected():
    with pytest.raises(CatvaeError, match="image_size"):
        build_cnn(16, 1, 2)
    with pytest.raises(CatvaeError, match="2 classes"):
        build_cnn(64, 1, 1)
