"""Metrics against worked examples, and baselines on a hand-made test set."""

import math

import numpy as np
import pytest
import torch

from fintrain.train.metrics import baselines, classification_metrics, regression_metrics, roc_auc


def test_auc_worked_example():
    # The ROC example of scikit-learn's documentation: 3 of 4 positive/negative pairs ordered.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)


def test_auc_ties_count_half_and_one_class_is_nan():
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.2, 0.2, 0.1, 0.9])) == pytest.approx(0.875)
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_classification_worked_example():
    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]))
    assert m["brier"] == pytest.approx(0.0375)  # (0.01 + 0.01 + 0.04 + 0.09) / 4
    expected_ll = -(math.log(0.9) + math.log(0.9) + math.log(0.8) + math.log(0.7)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["pos_rate"] == 0.5


def test_regression_worked_example():
    m = regression_metrics(np.array([0.01, -0.02, 0.03]), np.array([0.02, 0.01, -0.01]))
    assert m["mse"] == pytest.approx((0.0001 + 0.0009 + 0.0016) / 3)
    assert m["mae"] == pytest.approx((0.01 + 0.03 + 0.04) / 3)
    assert m["dir_acc"] == pytest.approx(1 / 3)


def test_baselines_on_hand_made_set():
    train_y = torch.tensor([1.0, 0.0, 0.0, 0.0])  # base rate 0.25
    test_y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    x_train = torch.tensor([[2.0], [-1.0], [-2.0], [-1.5]])
    x_test = torch.tensor([[1.5], [-1.0], [2.5], [-2.0]])
    out = baselines("threshold", train_y, test_y, x_train, x_test)
    assert set(out) == {"base_rate", "always_up", "logistic"}
    assert out["base_rate"]["auc"] == 0.5
    assert out["base_rate"]["brier"] == pytest.approx((0.75**2 + 0.25**2 + 0.75**2 + 0.25**2) / 4)
    assert out["always_up"]["accuracy"] == 0.5 and out["always_up"]["pos_rate"] == 1.0
    # The feature separates the classes, so the learned baseline ranks them perfectly.
    assert out["logistic"]["auc"] == 1.0

    ry_train = torch.tensor([0.01, 0.03, 0.02, 0.02])
    ry_test = torch.tensor([0.01, -0.01])
    reg = baselines("return", ry_train, ry_test, x_train, x_test[:2])
    assert reg["zero_return"]["mse"] == pytest.approx((0.0001 + 0.0001) / 2)
    assert reg["train_mean"]["mae"] == pytest.approx((0.01 + 0.03) / 2)
    assert set(reg) == {"zero_return", "train_mean", "linear"}


@pytest.mark.parametrize("task", ["threshold", "return"])
def test_baselines_of_device_tensors_copy_to_the_host_before_float64(strict_device, task):
    # fit_logistic / fit_linear get the training labels and last rows still on the device; on MPS
    # a cast-and-copy to float64 raises (torch <= 2.13) or gives zeros (2.14).
    train_y = torch.tensor([1.0, 0.0, 0.0, 0.0]) if task == "threshold" else torch.tensor([0.01, 0.03, 0.02, 0.02])
    test_y = torch.tensor([1.0, 0.0, 1.0, 0.0]) if task == "threshold" else torch.tensor([0.01, -0.01, 0.0, 0.02])
    x_train = torch.tensor([[2.0], [-1.0], [-2.0], [-1.5]])
    x_test = torch.tensor([[1.5], [-1.0], [2.5], [-2.0]])
    expected = baselines(task, train_y, test_y, x_train, x_test)
    device = torch.device("cpu", 0)
    with strict_device() as mode:
        on_device = [t.to(device) for t in (train_y, test_y, x_train, x_test)]
        assert all(mode.is_device(t) for t in on_device)
        out = baselines(task, *on_device)
    assert not mode.refused
    assert out == expected
