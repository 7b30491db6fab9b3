import pytest
import torch

from footseg.errors import FootsegError
from footseg.train.losses import build_loss, cross_entropy, distill_weight, distillation_loss, soft_iou_loss


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


def test_distillation_is_zero_when_the_student_matches_the_teacher_and_positive_otherwise() -> None:
    torch.manual_seed(2)
    teacher = torch.randn(2, 2, 8, 8)
    assert distillation_loss(teacher.clone(), teacher, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(torch.randn(2, 2, 8, 8), teacher, 4.0).item() > 1e-3


def test_distillation_is_t_squared_times_the_kl_of_softened_outputs() -> None:
    torch.manual_seed(3)
    student, teacher, t = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4), 3.0
    p = teacher.div(t).softmax(1)
    q = student.div(t).softmax(1)
    kl = (p * (p.log() - q.log())).sum(1).mean()
    assert distillation_loss(student, teacher, t).item() == pytest.approx(t * t * kl.item(), rel=1e-5)
    with pytest.raises(ValueError, match="differ"):
        distillation_loss(student, teacher[:, :, :2], t)


def test_distillation_pulls_the_student_towards_the_teacher() -> None:
    torch.manual_seed(4)
    teacher = torch.randn(1, 2, 8, 8) * 3
    student = torch.zeros(1, 2, 8, 8, requires_grad=True)
    before = distillation_loss(student, teacher, 2.0)
    before.backward()
    with torch.no_grad():
        after = distillation_loss(student - 0.5 * student.grad, teacher, 2.0)
    assert after < before


def test_distill_weight_falls_linearly_to_zero_unless_constant() -> None:
    assert [distill_weight(0.6, p) for p in (0.0, 0.5, 1.0, 2.0)] == pytest.approx([0.6, 0.3, 0.0, 0.0])
    assert distill_weight(0.6, 0.9, anneal=False) == 0.6
