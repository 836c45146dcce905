#!/bin/sh
# Regenerates the committed sample traces: each packet sample recorded with
# BPF_PROG_TEST_RUN on its documented inputs (inputs/<sample>.pcap, every
# case of samples/README.md in order, the bug triggers included).
# Needs root. Usage: sudo samples/traces/record.sh   (or make -C samples traces)
# BPFRR: the bpfrr binary to use (default: build it with cargo).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
samples=$(dirname "$here")
if [ -z "${BPFRR:-}" ]; then
    (cd "$samples/.." && cargo build -q -p bpfrr)
    BPFRR="${CARGO_TARGET_DIR:-$samples/../target}/debug/bpfrr"
fi
cd "$samples"
record() {
    sample=$1
    prog=$2
    "$BPFRR" record "$sample.bpf.o" --prog "$prog" --pcap "inputs/$sample.pcap" \
        -o "traces/$sample.bpfrr"
}
record xdp_fw xdp_firewall
record tc_rewrite tc_mark_dscp
record sock_filter udp_port_filter
record cgroup_skb egress_accounting
