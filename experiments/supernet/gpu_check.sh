#!/usr/bin/env bash
# The GPU check: the `gpu` tests, supernet throughput and peak memory, and the one-shot payoff
# comparison (payoff.py) at full size (NB201 C=16, N=5 skeleton on 28x28 Fashion-MNIST, all 50,000
# training images), in one call on one H100 that ends inside 8 minutes and prints every figure.
#
#   experiments/supernet/gpu_check.sh prepare   # here, once: .gpu/fashion-mnist (the idx files, 30 MB)
#                                               # and .gpu/wheels (what the GPU image lacks: hydra, mlflow, ...)
#   experiments/supernet/gpu_check.sh           # on the device machine, carrying .gpu (device tool: carry [".gpu"])
#   experiments/supernet/gpu_check.sh cpu       # here, at a reduced size, to know every step works
#
# Figures and tables land in $OUT (the device tool's folder; at most 8 files come back) or
# experiments/supernet/results/gpu_check. The payoff step works in .gpu/payoff-<mode> and resumes: a
# second call on a warm machine continues where the time limit stopped the first. Sizes can be
# changed through the variables below (BUDGET, SIZE, EPOCHS, INSIDE, UNIFORM, WORKERS, SEEDS, PAYOFF_S).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-gpu}
GPU_DIR=.gpu
OUT_DIR=${OUT:-experiments/supernet/results/gpu_check}
PY=${PYTHON:-python3}

if [ "$MODE" = prepare ]; then
  mkdir -p "$GPU_DIR/fashion-mnist" "$GPU_DIR/wheels"
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  src=${FASHION_ROOT:-/usr/share/datasets/fashion-mnist}
  cp "$src"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$GPU_DIR/fashion-mnist/"
  "$PY" experiments/supernet/gpu_wheels.py "$GPU_DIR/wheels" ${GPU_PYTHON_VERSION:-3.12}
  du -sh "$GPU_DIR"
  exit 0
fi

export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import hydra, mlflow, jsonschema" 2>/dev/null; then
  [ -d "$GPU_DIR/wheels" ] || { echo "hydra / mlflow missing and no $GPU_DIR/wheels: run '$0 prepare' here and carry .gpu"; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_site "$GPU_DIR"/wheels/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/gpu_site"
fi
WORK=$GPU_DIR/payoff-$MODE  # runs, checkpoints and the table: in the tree, so a warm machine resumes them
mkdir -p "$OUT_DIR" "$WORK"
ROOT_DATA=$([ -d "$GPU_DIR/fashion-mnist" ] && echo "$GPU_DIR/fashion-mnist" || echo /usr/share/datasets/fashion-mnist)

if [ "$MODE" = cpu ]; then  # a reduced size: each step once, in a few minutes of two cores
  SKELETON="space.C=4 space.N=1 dataset.resolution=8 dataset.n_train=2000 dataset.n_val=1000 dataset.n_test=1000"
  TRAIN="evaluator.epochs=1 evaluator.batch_size=128 evaluator.lr=0.1"
  PAYOFF="--budget ${BUDGET:-40} --size ${SIZE:-8} --epochs ${EPOCHS:-2} --inside ${INSIDE:-8} --uniform ${UNIFORM:-10} --uniform-pool 20 --workers ${WORKERS:-2} --batch-size 128"
  THROUGHPUT="--input 1 8 8 --C 4 --N 1 --batch 128 --steps 10"
  PAYOFF_S=${PAYOFF_S:-400}
else
  SKELETON="space.C=16 space.N=5 dataset.resolution=28 dataset.n_train=null dataset.n_val=10000"
  TRAIN="evaluator.epochs=${TRAIN_EPOCHS:-4} evaluator.batch_size=256 evaluator.lr=0.1"
  PAYOFF="--budget ${BUDGET:-40} --size ${SIZE:-20} --epochs ${EPOCHS:-20} --inside ${INSIDE:-20} --uniform ${UNIFORM:-30} --uniform-pool 300 --workers ${WORKERS:-8} --batch-size 256 --lr 0.1"
  THROUGHPUT="--input 1 28 28 --C 16 --N 5 --batch 256 --steps 50"
  PAYOFF_S=${PAYOFF_S:-330}
fi

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

echo "== gpu tests"
# Only the files holding gpu tests: others import dev extras (optuna, ConfigSpace) the image lacks.
"$PY" -m pytest -m gpu -q -p no:cacheprovider $(grep -rl "mark.gpu" tests) 2>&1 | tail -5 | tee "$OUT_DIR/gpu_tests.txt" || true

echo "== supernet throughput and peak memory"
{
  "$PY" experiments/supernet/throughput.py $THROUGHPUT
  [ "$MODE" = cpu ] || "$PY" experiments/supernet/throughput.py ${THROUGHPUT/--input 1 28 28/--input 3 32 32}
} 2>&1 | tee "$OUT_DIR/throughput.txt"

echo "== one-shot payoff (stops after ${PAYOFF_S} s; rerun to continue)"
set +e
timeout --signal=INT "$PAYOFF_S" "$PY" experiments/supernet/payoff.py --seeds "${SEEDS:-0}" --out "$WORK" \
  --table "$WORK/nb201_fashion_mnist_${MODE}.csv" \
  --protocol space=nb201 dataset=fashion_mnist "dataset.root=$ROOT_DATA" $SKELETON evaluator=train $TRAIN \
  "evaluator.record_epochs=[1]" $PAYOFF 2>&1 | tee "$OUT_DIR/payoff.txt"
status=${PIPESTATUS[0]}
set -e
cp "$WORK/results.jsonl" "$WORK/cross.jsonl" "$WORK/summary.md" "$WORK/nb201_fashion_mnist_${MODE}.csv" "$OUT_DIR/" 2>/dev/null || true
echo "payoff exit status $status (124/130: stopped by the time limit; rerun to resume)"
