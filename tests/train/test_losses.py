import pytest
import torch

from footseg.errors import FootsegError
from footseg.train.losses import build_loss, cross_entropy, soft_iou_loss


def _target() -> torch.Tensor:
    t = torch.zeros(2, 8, 8, dtype=torch.int64)
    t[0, 2:6, 2:6] = 1
    t[1, :, :4] = 1
    return t


def _logits_for(labels: torch.Tensor, confidence: float = 20.0) -> torch.Tensor:
    """Logits whose argmax is ``labels``, with a softmax margin of ``confidence``."""
    return torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * confidence


def test_iou_loss_is_zero_for_a_perfect_prediction() -> None:
    t = _target()
    assert soft_iou_loss(_logits_for(t), t).item() == pytest.approx(0.0, abs=1e-6)


def test_iou_loss_is_one_for_an_inverted_prediction() -> None:
    t = _target()
    assert soft_iou_loss(_logits_for(1 - t), t).item() == pytest.approx(1.0, abs=1e-6)


def test_iou_loss_matches_the_formula_per_image() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8)
    t = _target()
    p = logits.softmax(1)[:, 1]
    expected = [1 - (p[i] * t[i]).sum() / (p[i] + t[i] - p[i] * t[i]).sum() for i in range(2)]
    assert soft_iou_loss(logits, t).item() == pytest.approx(float(sum(expected) / 2), rel=1e-5)


def test_iou_loss_of_an_empty_image_predicted_empty_is_zero() -> None:
    t = torch.zeros(1, 8, 8, dtype=torch.int64)
    assert soft_iou_loss(_logits_for(t), t).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["ce", "iou", "ce+iou"])
def test_gradient_flows_and_lowers_the_loss(name: str) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss(name)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    t = _target()
    before = loss_fn(logits, t)
    before.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with torch.no_grad():
        after = loss_fn(logits - 1.0 * logits.grad, t)
    assert after < before


def test_ce_plus_iou_is_the_sum() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 8, 8)
    t = _target()
    total = build_loss("ce+iou")(logits, t)
    assert total.item() == pytest.approx((cross_entropy(logits, t) + soft_iou_loss(logits, t)).item(), rel=1e-6)
    assert build_loss("ce")(logits, t).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, t).item(), rel=1e-6
    )


@pytest.mark.parametrize("name", ["dice", "", "ce+", "ce+focal"])
def test_unknown_loss_is_a_user_error(name: str) -> None:
    with pytest.raises(FootsegError, match="unknown loss"):
        build_loss(name)

