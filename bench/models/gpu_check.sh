#!/usr/bin/env bash
# The one GPU check of issue 15, item 4: training and inference throughput of the imaging
# networks on a GPU, fp32 eager vs bf16 autocast (eager, and with channels_last_3d +
# torch.compile), with model FLOP utilisation; then the manifest commands on the GPU.
#
# PREPARED, NOT YET RUN: no GPU was lent to the session that wrote it (the numbers in
# models/README.md are CPU numbers). It was dry-run on a CPU (GPU_CHECK_CPU=1, below).
#
#   1. networks  bench_models.py, full-size configs: the 3-D UNet of unet3d_vertebra_seg at 96³
#                and the 3-D DenseNet-121 of densenet121_ovcf at 64³, batch 2; modes fp32-eager
#                (TF32 off), tf32-eager, bf16-eager, bf16-cl-compile; training and inference
#                volumes/s, achieved TFLOP/s, MFU against the card's datasheet peak, peak memory.
#   2. pipeline  bench_inference.py --device cuda --full: predict_from_manifest (bf16 autocast,
#                cases stacked per batch on CUDA) and train_from_manifest (bf16 autocast) on 300
#                phantom DICOM series, 1, 4 and 8 DataLoader workers: cases/s, peak host and GPU
#                memory, cost of a resume. No Ray rows: Ray's wheel (about 70 MB) does not fit
#                the device tool's 64 MiB transfer, and its image has no Ray.
#
# Where it runs: the device tool's machines (one H100 or H200, 16 cores) have torch but not
# monai, nibabel or pydicom, and cannot download. So, once, on a machine with pip and network:
#     bash bench/models/gpu_check.sh --fetch-wheels      # three pure-Python wheels into .whl/
# then, through the device tool (about 6-8 minutes of device time; each step has its own limit):
#     run(command="bash bench/models/gpu_check.sh", carry=[".whl"], timeout_s=560)
# or on any CUDA machine with the models extra installed: bash bench/models/gpu_check.sh [DIR].
# Results (env.txt, networks.txt, pipeline.txt) go to DIR, else $OUT, else
# bench/models/gpu_results/; copy the tables into models/README.md with the card named.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >>.git/info/exclude
    exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux2014_x86_64 --platform any -d .whl \
        monai==1.6.1 nibabel==5.4.2 pydicom==3.0.2
fi

RESULTS="${1:-${OUT:-bench/models/gpu_results}}"
mkdir -p "$RESULTS"
PY="${PYTHON:-python3}"
[[ -x .venv/bin/python && -z "${PYTHON:-}" ]] && PY=.venv/bin/python
export PYTHONUNBUFFERED=1

# monai, nibabel and pydicom from carried wheels when the image lacks them
if ! "$PY" -c "import monai, nibabel, pydicom" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/gpu_check_site .whl/*.whl || exit 1
        export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "monai, nibabel and pydicom are missing: run 'bash $0 --fetch-wheels' where pip" \
            "works, and carry .whl" >&2
        exit 1
    fi
fi
# studyval without installing it: a folder of links that maps its packages as pyproject does
if ! "$PY" -c "import studyval.models.training" 2>/dev/null; then
    shim=/tmp/gpu_check_shim/studyval
    rm -rf /tmp/gpu_check_shim && mkdir -p "$shim"
    for f in studyval/*; do ln -s "$PWD/$f" "$shim/"; done
    ln -s "$PWD/analysis" "$shim/analysis"
    ln -s "$PWD/models" "$shim/models"
    ln -s "$PWD/data_dictionary" "$shim/data_dictionary"
    ln -s "$PWD/reports" "$shim/reports"
    export PYTHONPATH="/tmp/gpu_check_shim${PYTHONPATH:+:$PYTHONPATH}"
    "$PY" -c "import studyval.models.training" || exit 1
fi

if [[ "${GPU_CHECK_CPU:-0}" == "1" ]]; then
    # dry run of this script on a CPU: tiny networks, 16 cases (checks the script, not a GPU)
    DEVICE=cpu NET_ARGS=(--tiny --steps 1 --warmup 1 --no-compile --modes fp32-eager,bf16-eager)
    PIPE_ARGS=(--n 16 --workers 1,2 --engines local --train --device cpu)
else
    DEVICE=cuda NET_ARGS=(--steps 10 --warmup 3 --batch 2
        --modes fp32-eager,tf32-eager,bf16-eager,bf16-cl-compile)
    PIPE_ARGS=(--n 300 --workers 1,4,8 --engines local --train --timeout-row --full
        --device cuda --batch-size 16)
fi

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true
    "$PY" -c "import torch, monai; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'monai', monai.__version__); print('device', torch.cuda.get_device_name(0) if \
torch.cuda.is_available() else 'cpu', 'bf16', torch.cuda.is_available() and \
torch.cuda.is_bf16_supported())"
    nproc
} 2>&1 | tee "$RESULTS/env.txt"
if [[ "$DEVICE" == cuda ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "no CUDA device: nothing measured (GPU_CHECK_CPU=1 dry-runs the script on a CPU)" >&2
    exit 1
fi

status=0
echo "== 1. networks (bench_models.py)" | tee -a "$RESULTS/env.txt"
timeout 300 "$PY" bench/models/bench_models.py "${NET_ARGS[@]}" 2>&1 | tee "$RESULTS/networks.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "networks step failed or ran out of time" >&2; status=1; }
echo "== 2. pipeline (bench_inference.py)" | tee -a "$RESULTS/env.txt"
timeout 200 "$PY" bench/models/bench_inference.py "${PIPE_ARGS[@]}" 2>&1 | tee "$RESULTS/pipeline.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "pipeline step failed or ran out of time" >&2; status=1; }
echo "results in $RESULTS"
exit $status
