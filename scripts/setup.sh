#!/usr/bin/env bash
# Installs everything bpfrr's build, samples and tests need on a fresh Debian
# machine, and mounts the kernel file systems the recorder uses. Idempotent.
# Run as root (or with sudo).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
pkgs=(clang-19 llvm-19 libbpf-dev bpftool gcc make iproute2 tmux python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# The recorder attaches to tracepoints and pins nothing, but bpftool and the
# kernel tests expect these mounted; a fresh machine has neither.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || echo "warning: could not mount bpffs on /sys/fs/bpf"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing || echo "warning: could not mount tracefs on /sys/kernel/tracing"
