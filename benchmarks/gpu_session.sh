#!/usr/bin/env bash
# The GPU checks in one go, for a machine with CUDA (about 10 minutes on one modern GPU):
# the gpu-marked tests, then the device benchmarks; JSON lands in benchmarks/results/.
#   bash benchmarks/gpu_session.sh [python]
# The 30-minute zoo is separate: genlab zoo --data fashion-mnist --budget 30m --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -m gpu
"$PY" benchmarks/device_throughput.py --device cuda --steps 200 --repeats 2
"$PY" benchmarks/iwae_speed.py --device cuda --k 1000
"$PY" benchmarks/autoregressive.py --device cuda --sample-images 64 --families gated_pixelcnn pixelcnn pixelrnn
