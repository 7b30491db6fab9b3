#!/bin/bash
# Training on a CUDA GPU, one short check (timeouts add up to under 10 minutes; benchmarks/README.md "Training on a
# GPU"): speed by data-loader workers, a run stopped by SIGTERM and resumed against the same run uninterrupted,
# run-to-run determinism of one step, torchrun (nccl), and a CUDA-trained model evaluated on the CPU.
#
#   bash benchmarks/gpu_train.sh DATA        (DATA: a footseg dataset with train/ and val/, e.g. a slice of a render)
#
# PYTHON picks the interpreter (default python3; footseg must import, e.g. PYTHONPATH=src). Runs and full logs go to
# /tmp/gpu_train; the lines shown are filtered from them.
set -u
DATA=${1:?usage: bash benchmarks/gpu_train.sh DATA}
PY=${PYTHON:-python3}
RUNS=/tmp/gpu_train
rm -rf "$RUNS"
mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1
nvidia-smi -L
"$PY" -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
COMMON=(--model fastlinknet_ctx --data "$DATA" --size 192 --batch-size 16 --lr 0.002 --loss ce+iou --ema 0.999
        --seed 0 --device cuda --no-progress)
TRAIN=("$PY" -m footseg train "${COMMON[@]}")
WAIT=("$PY" benchmarks/train_wait.py train "${COMMON[@]}" --steps-per-epoch 60 --epochs 6 --workers 14)
SHOW='^epoch|\[wait\]|\[profile\]|resuming|stopped|best model|Error|Traceback'

# run NAME LIMIT_S COMMAND...: the command's whole output to $RUNS/NAME.log (a file, not a pipe: workers outliving
# their run would hold a pipe open), then the lines that matter
run() {
    local name=$1 limit=$2
    shift 2
    timeout -k 20 "$limit" "$@" > "$RUNS/$name.log" 2>&1
    grep -E "$SHOW" "$RUNS/$name.log"
}

for w in 1 6 14; do
    echo "== speed: $w data-loader workers (the default recipe uses 1)"
    run "w$w" 60 "${TRAIN[@]}" --out "$RUNS/w$w" --epochs 1 --steps-per-epoch 100 --workers "$w"
done

# Epoch 5 of both the uninterrupted and the resumed run under torch.profiler: where a resumed step's time goes
export TRAIN_WAIT_PROFILE=5
echo "== stop and resume, 14 workers: uninterrupted"
run full 90 "${WAIT[@]}" --out "$RUNS/full"
echo "== stop and resume, 14 workers: SIGTERM after 24 s, then --resume"
run stop 24 "${WAIT[@]}" --out "$RUNS/stop"
# Python processes left by the stopped run (data-loader workers outliving it would take CPU from the resumed one),
# now and 20 s into the resumed run
ps -eo pid,ppid,stat,pcpu,etimes,args | grep -E "[p]ython" || echo "no python processes"
(sleep 20; echo "-- 20 s into the resumed run:"; ps -eo pid,ppid,stat,pcpu,etimes,args | grep -E "[p]ython") &
run resume 90 "${WAIT[@]}" --out "$RUNS/stop" --resume
wait
unset TRAIN_WAIT_PROFILE

echo "== determinism: one training step twice, and PyTorch's deterministic mode"
CUBLAS_WORKSPACE_CONFIG=:4096:8 timeout -k 20 60 "$PY" - <<'PY'
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
run ddp 60 "$PY" -m torch.distributed.run --nproc_per_node 1 -m footseg train "${COMMON[@]}" --out "$RUNS/ddp" \
    --epochs 1 --steps-per-epoch 100 --workers 6

echo "== the 6-epoch CUDA-trained model, evaluated on the CPU (its last validation above, on the GPU)"
timeout -k 20 60 "$PY" -m footseg eval "$RUNS/full/best" --data "$DATA" --split val 2>&1 | tail -1
