#!/usr/bin/env bash
# One-time machine set-up after `npm ci`: the Debian packages that hold the real data sets and
# the official ONNX test vectors. Idempotent; installs only what is missing.
#   dataset-fashion-mnist  -> /usr/share/datasets/fashion-mnist (zoo image tasks)
#   libonnx-testdata       -> /usr/share/libonnx-testdata (ONNX node test vectors)
#   chromium               -> /usr/bin/chromium (the leaderboard's browser test, playwright-core)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

APT_PACKAGES=(dataset-fashion-mnist libonnx-testdata chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present (${APT_PACKAGES[*]})"
fi
