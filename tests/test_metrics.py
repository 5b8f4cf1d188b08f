import math

import pytest
import torch

from jepa_tui.evaluation.metrics import normalised_error, sigma_z


def latents(n=50, k=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    current = torch.randn(n, d, generator=g)
    target = current.unsqueeze(1) + torch.randn(n, k, d, generator=g)
    return current, target


def test_persistence_scores_one_and_perfect_scores_zero():
    current, target = latents()
    persistence = current.unsqueeze(1).expand_as(target)
    assert torch.allclose(normalised_error(persistence, target, current, 1e-6), torch.ones(3))
    assert torch.equal(normalised_error(target, target, current, 1e-6), torch.zeros(3))
    halfway = (persistence + target) / 2
    assert torch.allclose(normalised_error(halfway, target, current, 1e-6), torch.full((3,), 0.25))


def test_degenerate_denominators_are_excluded():
    current, target = latents(n=10)
    target[:4, 0] = current[:4]  # no motion at horizon 1 for four samples: denominator 0
    predicted = target.clone()
    predicted[:4, 0] += 100.0  # a huge error on exactly those samples
    predicted[4:, 0] = current[4:]  # persistence elsewhere
    err = normalised_error(predicted, target, current, 1e-6)
    assert err[0].item() == pytest.approx(1.0)  # the four degenerate samples do not count
    target[:, 1] = current  # every sample degenerate at horizon 2
    assert math.isnan(normalised_error(predicted, target, current, 1e-6)[1].item())


def test_r2_formula_scores_the_mean_prediction_one():
    current, target = latents()
    mean = target.mean(0, keepdim=True).expand_as(target)
    assert torch.allclose(normalised_error(mean, target, current, 1e-6, "r2"), torch.ones(3))
    with pytest.raises(ValueError, match="unknown D_shift formula"):
        normalised_error(mean, target, current, 1e-6, "other")


def test_sigma_z_detects_collapse():
    assert sigma_z(torch.zeros(100, 8)) == 0.0
    assert sigma_z(torch.randn(10000, 8, generator=torch.Generator().manual_seed(0))) == pytest.approx(1.0, abs=0.03)


def test_ratio_of_sums_and_median_against_a_hand_computation():
    """Two samples, one horizon, d = 1: errors 1 and 4 against persistence errors 4 and 1 (ratios 0.25 and 4)."""
    current = torch.tensor([[0.0], [0.0]])
    target = torch.tensor([[[2.0]], [[1.0]]])  # persistence errors 4 and 1
    predicted = torch.tensor([[[1.0]], [[3.0]]])  # errors 1 and 4
    assert normalised_error(predicted, target, current, 1e-6, "per_sample").item() == pytest.approx((0.25 + 4) / 2)
    assert normalised_error(predicted, target, current, 1e-6, "ratio_of_sums").item() == pytest.approx(5 / 5)
    assert normalised_error(predicted, target, current, 1e-6, "median").item() == pytest.approx(0.25)  # lower middle
    still = torch.cat([target, torch.zeros(1, 1, 1)])  # a third sample that does not move is excluded by all three
    moved = torch.cat([predicted, torch.tensor([[[9.0]]])])
    current3 = torch.zeros(3, 1)
    for formula in ("per_sample", "ratio_of_sums", "median"):
        assert normalised_error(moved, still, current3, 1e-6, formula) == \
            normalised_error(predicted, target, current, 1e-6, formula)


def test_every_formula_scores_persistence_one():
    from jepa_tui.evaluation.metrics import all_normalised_errors

    current, target = latents()
    persistence = current.unsqueeze(1).expand_as(target)
    errors = all_normalised_errors(persistence, target, current, 1e-6)
    for formula in ("per_sample", "ratio_of_sums", "median"):
        assert torch.allclose(errors[formula], torch.ones(3)), formula
