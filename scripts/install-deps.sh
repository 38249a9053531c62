#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test cramc.
# Idempotent: skips apt/pip when everything is already there.
#   apt:  cmake, clang (libFuzzer), llvm-14-tools (FileCheck), llvm-14-dev (LLVM-C:
#         the cuda target's host code, codegen/llvm_host.c), python3-torch (the
#         independent reference, run with /usr/bin/python3), zstd
#   pip:  lit (test runner), tokenizers (WordPiece training in tools/)
set -euo pipefail

APT_PKGS=(cmake gcc clang clang-format-14 llvm-14-tools llvm-14-dev libclang-rt-14-dev python3-torch python3-numpy zstd libopenblas-dev openmpi-bin libopenmpi-dev)
PIP_PKGS=(lit tokenizers)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
need_pip=()
for p in "${PIP_PKGS[@]}"; do   # each package imports under its own name
  "$PY" -c "import $p" 2>/dev/null || need_pip+=("$p")
done
if ((${#need_pip[@]})); then
  echo "install-deps: pip install ${need_pip[*]}"
  "$PY" -m pip install -q "${need_pip[@]}"
fi
echo "install-deps: ok"
