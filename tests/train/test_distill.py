import pytest
import torch

from footseg.errors import FootsegError
from footseg.models.registry import create_model, list_models
from footseg.train.distill import (
    FeatureTap,
    attention_map,
    attention_transfer_loss,
    distill_weight,
    distillation_loss,
)


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


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_names_its_encoder_stages_by_stride(name: str) -> None:
    model = create_model(name, width=0.25).eval()
    tap = FeatureTap(model)
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    assert set(tap.features) == set(model.feature_stages) and len(tap.features) >= 2
    for stride, f in tap.features.items():
        assert f.shape[-2:] == (64 // stride, 64 // stride)
    tap.close()
    tap_features = tap.features
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    assert tap_features == {}  # closed: the hooks are gone


def test_a_network_without_feature_stages_is_a_user_error() -> None:
    with pytest.raises(FootsegError, match="feature_stages"):
        FeatureTap(torch.nn.Conv2d(3, 2, 1))


def test_attention_map_is_the_normalised_channel_mean_of_squares() -> None:
    torch.manual_seed(5)
    f = torch.randn(2, 4, 3, 3)
    q = attention_map(f)
    assert q.shape == (2, 9)
    assert torch.allclose(q.norm(dim=1), torch.ones(2))
    expected = f[0].pow(2).mean(0).flatten()
    assert torch.allclose(q[0], expected / expected.norm())


def test_attention_transfer_compares_the_common_strides_only() -> None:
    torch.manual_seed(6)
    student = {4: torch.randn(1, 8, 16, 16), 8: torch.randn(1, 16, 8, 8)}
    same = {4: student[4] * 3.0, 8: torch.cat([student[8], student[8]], dim=1), 16: torch.randn(1, 4, 4, 4)}
    # scale and duplicated channels leave the attention unchanged; the teacher's extra stride is ignored
    assert attention_transfer_loss(student, same).item() == pytest.approx(0.0, abs=1e-7)
    other = {8: torch.randn(1, 32, 8, 8)}
    loss = attention_transfer_loss(student, other)
    expected = (attention_map(student[8]) - attention_map(other[8])).pow(2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and loss.item() > 0
    with pytest.raises(ValueError, match="no common stride"):
        attention_transfer_loss({4: student[4]}, other)
