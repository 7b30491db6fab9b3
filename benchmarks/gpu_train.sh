#!/bin/bash
# Training on a CUDA GPU, one short check (about 4 minutes on an H200; benchmarks/README.md "Training on a GPU"):
# speed by data-loader workers, a run stopped by SIGTERM and resumed against the same run uninterrupted, run-to-run
# determinism of one step, torchrun (nccl), and a CUDA-trained model evaluated on the CPU.
#
#   bash benchmarks/gpu_train.sh DATA        (DATA: a footseg dataset with train/ and val/, e.g. a slice of a render)
#
# PYTHON picks the interpreter (default python3; footseg must import, e.g. PYTHONPATH=src). Runs go to /tmp/gpu_train.
set -u
DATA=${1:?usage: bash benchmarks/gpu_train.sh DATA}
PY=${PYTHON:-python3}
RUNS=/tmp/gpu_train
rm -rf "$RUNS"
export PYTHONUNBUFFERED=1
nvidia-smi -L
"$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
TRAIN="$PY -m footseg train --model fastlinknet_ctx --data $DATA --size 192 --batch-size 16 --lr 0.002 --loss ce+iou
       --ema 0.999 --seed 0 --device cuda --no-progress"
WAIT="$PY benchmarks/train_wait.py train --model fastlinknet_ctx --data $DATA --size 192 --batch-size 16 --lr 0.002
      --loss ce+iou --ema 0.999 --seed 0 --device cuda --no-progress --steps-per-epoch 60 --epochs 6"

for w in 1 6 14; do
    echo "== speed: $w data-loader workers (the recipe uses 1)"
    timeout 100 $TRAIN --out "$RUNS/w$w" --epochs 1 --steps-per-epoch 300 --workers "$w" 2>&1 | grep -E "^epoch"
done

for w in 14 8; do
    echo "== stop and resume, $w workers: uninterrupted"
    timeout 90 $WAIT --workers "$w" --out "$RUNS/full$w" 2>&1 | grep -E "^epoch|\[wait\]"
    echo "== stop and resume, $w workers: SIGTERM after 24 s, then --resume"
    timeout 24 $WAIT --workers "$w" --out "$RUNS/stop$w" 2>&1 | grep -E "^epoch|\[wait\]|stopped"
    # Python processes left by the stopped run (data-loader workers outliving it would take CPU from the resumed
    # one), now and 20 s into the resumed run.
    ps -eo pid,ppid,stat,pcpu,etimes,args | grep -E "[p]ython" || echo "no python processes"
    (sleep 20; echo "-- 20 s into the resumed run:"; ps -eo pid,ppid,stat,pcpu,etimes,args | grep -E "[p]ython" | head -40) &
    timeout 90 $WAIT --workers "$w" --out "$RUNS/stop$w" --resume 2>&1 | grep -E "^epoch|\[wait\]|resuming"
    wait
done

echo "== determinism: one training step twice, and PyTorch's deterministic mode"
CUBLAS_WORKSPACE_CONFIG=:4096:8 "$PY" - <<'PY'
import torch
import torch.nn.functional as F

from footseg.models.registry import create_model


def gradients(deterministic: bool) -> list[torch.Tensor]:
    torch.use_deterministic_algorithms(deterministic)
    torch.manual_seed(0)
    model = create_model("fastlinknet_ctx", num_classes=2).cuda().train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 192, 192, generator=g).cuda()
    y = torch.randint(0, 2, (16, 192, 192), generator=g).cuda()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


a, b = gradients(False), gradients(False)
largest = max((u - v).abs().max().item() for u, v in zip(a, b))
print("default: largest gradient difference between two identical steps", largest)
try:
    c, d = gradients(True), gradients(True)
    print("deterministic: largest gradient difference", max((u - v).abs().max().item() for u, v in zip(c, d)))
except RuntimeError as exc:
    print("deterministic mode refused:", str(exc).splitlines()[0][:200])
PY

echo "== torchrun, 1 process (nccl)"
timeout 100 "$PY" -m torch.distributed.run --nproc_per_node 1 -m footseg train --model fastlinknet_ctx --data "$DATA" \
    --size 192 --batch-size 16 --device cuda --no-progress --out "$RUNS/ddp" --epochs 1 --steps-per-epoch 100 \
    --workers 6 2>&1 | grep -E "^epoch|best model"

echo "== a CUDA-trained model, evaluated on the CPU"
timeout 60 "$PY" -m footseg eval "$RUNS/w14/best" --data "$DATA" --split val 2>&1 | tail -1
