#!/bin/sh
# Writes the running kernel's BPF enums (helper ids, map, program and attach
# types) as "<enum> <CONSTANT> <number>" lines, read from its BTF. The
# catalogue tests compare src/catalog/ against this dump.
#
# Usage: tools/dump_kernel_enums.sh > tests/catalog_data/linux-$(uname -r | cut -d. -f1,2)-enums.txt
# Needs bpftool and /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF).
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
echo "# BPF enums of Linux $(uname -r), from $btf"
bpftool btf dump file "$btf" format c | awk '
    /^enum (bpf_func_id|bpf_map_type|bpf_prog_type|bpf_attach_type) \{/ { name = $2; next }
    name != "" && /^\};/ { name = ""; next }
    name != "" {
        gsub(/[,\t ]/, "")
        split($0, kv, "=")
        if (kv[1] !~ /^__/ && kv[1] != "MAX_BPF_ATTACH_TYPE") print name, kv[1], kv[2]
    }'
