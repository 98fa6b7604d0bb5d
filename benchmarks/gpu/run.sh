#!/usr/bin/env bash
# Every benchmark on a lent GPU machine, in one command that ends inside the machine's limit.
#
# On the GPU machine, from the repository's root, with .whl/ carried there (fetch_wheels.sh):
#   bash benchmarks/gpu/run.sh                 # results under $OUT, else benchmarks/results
#   BUDGET_S=300 bash benchmarks/gpu/run.sh --only=train_step_float32,metrics
#
# 1. installs .whl/'s wheels under $JAXSEG_GPU_SCRATCH/site (default /tmp/jaxseg-gpu/site), first
#    on PYTHONPATH, so the pinned flax / optax / orbax shadow the image's (JAX, NumPy and PyTorch
#    stay the image's);
# 2. compiles .whl/sdist/ (gco-wrapper, pydensecrf2) in the background at low priority, for the
#    classic and CRF benchmarks later in run_all's plan (a failed build only skips those anchors);
# 3. runs benchmarks/run_all.py under BUDGET_S seconds (480 by default, the 8 minutes asked for),
#    which writes <device>.json after every benchmark; the log goes beside it.
# Extra arguments go to run_all.py.
set -uo pipefail

if [[ ! -f benchmarks/run_all.py ]]; then
  echo "run from the repository's root (no benchmarks/run_all.py here)" >&2
  exit 2
fi
python_version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ ! -f .whl/python_version ]]; then
  echo ".whl/ is missing: run 'bash benchmarks/gpu/fetch_wheels.sh' where PyPI is reached," \
    "and carry .whl" >&2
  exit 2
fi
if [[ "$(cat .whl/python_version)" != "$python_version" ]]; then
  echo ".whl/ holds wheels for Python $(cat .whl/python_version), this python3 is" \
    "$python_version: run 'bash benchmarks/gpu/fetch_wheels.sh $python_version'" >&2
  exit 2
fi
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
scratch="${JAXSEG_GPU_SCRATCH:-/tmp/jaxseg-gpu}"
site="$scratch/site"
built="$scratch/site-built"
rm -rf "$scratch"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$site" .whl/*.whl || exit 1
export PYTHONPATH="$built:$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

(
  for source in .whl/sdist/*.tar.gz; do
    nice -n 19 python3 -m pip wheel -q --no-deps --no-build-isolation --no-cache-dir \
      -w "$scratch/wheels-built" "$source" || echo "build failed: $source"
  done
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$built" \
    "$scratch"/wheels-built/*.whl && echo "built: $(ls "$scratch/wheels-built")"
) >"$out/sdist_builds.log" 2>&1 &
builds=$!

device="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
slug="$(echo "${device:-cpu}" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9\n' '-')"
echo "device: ${device:-none found by nvidia-smi}; python3 $python_version; results: $out/$slug.json"
python3 benchmarks/run_all.py --out="$out/$slug.json" --budget_s="${BUDGET_S:-480}" "$@" 2>&1 |
  tee "$out/run_all.log"
status=${PIPESTATUS[0]}
pkill -P "$builds" 2>/dev/null; kill "$builds" 2>/dev/null
cat "$out/sdist_builds.log"
exit "$status"
