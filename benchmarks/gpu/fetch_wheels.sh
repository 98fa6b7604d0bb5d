#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with what benchmarks/gpu/run.sh installs on a lent GPU machine that
# reaches no package registry: the packages jaxseg and the benchmarks' anchors import that the
# machine's image lacks, and flax / optax / orbax at the versions requirements.txt pins (the
# image's own may differ). JAX, NumPy, PyTorch and the rest are the image's.
#
# Usage, here (a machine that reaches PyPI), from the repository's root:
#   bash benchmarks/gpu/fetch_wheels.sh          # wheels for the lent machine's Python, 3.12
#   bash benchmarks/gpu/fetch_wheels.sh 3.13     # for another Python (a rehearsal, say)
#
# Binary wheels for the target Python come from PyPI as they are; the three packages published
# only as sources (promise, pure Python, is built into a wheel here; gco-wrapper and pydensecrf2
# are C++) go to .whl/sdist/, and run.sh compiles those on the GPU machine while the first
# benchmarks run. About 15 MB in all (the device tool carries at most 64 MiB).
set -euo pipefail

python_version="${1:-3.12}"
dest=.whl
if [[ ! -f pyproject.toml || ! -d benchmarks/gpu ]]; then
  echo "run from the repository's root (found no pyproject.toml / benchmarks/gpu here)" >&2
  exit 2
fi
rm -rf "$dest"
mkdir -p "$dest/sdist"

# Missing from the image: tensorflow-datasets and what it imports, grain, ml-collections, and
# the anchors PyMaxflow (graph cuts), gco-wrapper (alpha-expansion) and pydensecrf2 (dense CRF).
# Versions: those the test suite passes with here. protobuf too: googleapis-common-protos's
# generated code refuses an older runtime than the one it was generated for.
binary=(
  tensorflow-datasets==4.9.10 array-record==0.8.6 grain==0.2.18 ml-collections==1.1.0
  dm-tree==0.1.10 immutabledict==4.3.1 simple-parsing==0.1.9 docstring-parser==0.18.0
  tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 protobuf==7.36.2
  termcolor==3.3.0 toml==0.10.2 portpicker==1.6.0 PyMaxflow==1.3.2
  flax==0.12.8 optax==0.2.8 orbax-checkpoint==0.12.8
)
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
  manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
  --implementation cp "${platforms[@]}" -d "$dest" "${binary[@]}"

python3 -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$dest/sdist" \
  promise==2.3 gco-wrapper==3.0.9 pydensecrf2==1.1
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dest" "$dest/sdist/promise-2.3.tar.gz"
rm "$dest/sdist/promise-2.3.tar.gz"

echo "$python_version" >"$dest/python_version"
ls "$dest" "$dest/sdist"
du -sh "$dest"
