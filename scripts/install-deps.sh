#!/usr/bin/env bash
# Installs every Debian 12 package xfp needs to build, test and benchmark.
# Run as root. Safe to run again. With --if-missing it returns at once when
# every package is already installed (the demo and test scripts use that).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get install needs it)" >&2
  exit 1
fi
packages=(
  # build
  cmake g++ make pkg-config clang llvm bpftool linux-libc-dev
  # BPF and XDP
  libbpf-dev libxdp-dev libelf-dev zlib1g-dev xdp-tools
  # libraries
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libpcap-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev iproute2 ethtool
  # NFQUEUE peer of bench/callout (libnetfilter_queue, iptables-nft)
  libnetfilter-queue-dev iptables
)
all_installed() {
  # dpkg-query fails for a package it never saw, and prints a status other
  # than "install ok installed" for one that was removed.
  local status
  status=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null) || return 1
  ! grep -qv '^install ok installed$' <<<"$status"
}
if [ "${1:-}" = "--if-missing" ] && all_installed; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
