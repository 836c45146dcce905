//! Bounds on the sizes and counts that untrusted input (a trace, an object
//! file) decides during a replay or a model run. Every number that sizes an
//! allocation is checked against one of these before anything is
//! allocated; each is tied to what the kernel allows, so a real recording
//! never meets them. docs/limits.md lists them all.

/// Largest value of an array, hash, LPM-trie, queue or stack map: the
/// kernel's `KMALLOC_MAX_SIZE` on x86-64 (4 MiB); BPF_MAP_CREATE refuses
/// larger values with `-E2BIG`.
pub const MAX_MAP_VALUE_SIZE: u32 = 4 << 20;

/// Largest key of a hash map: `MAX_BPF_STACK` (512; programs build keys on
/// the stack, and BPF_MAP_CREATE refuses larger ones with `-E2BIG`).
pub const MAX_HASH_KEY_SIZE: u32 = 512;

/// Largest value of a per-CPU map, rounded up to 8 bytes: the kernel's
/// `PCPU_MIN_UNIT_SIZE` (32 KiB).
pub const MAX_PERCPU_VALUE_SIZE: u32 = 32 << 10;

/// Most CPUs a trace may say it was recorded on: the largest `NR_CPUS` the
/// kernel can be built with (`CONFIG_MAXSMP`, 8192). Per-CPU values are
/// stored once per CPU, so this bounds one per-CPU element at
/// 8192 x 32 KiB = 256 MiB.
pub const MAX_CPUS: u32 = 8192;

/// Largest memory behind a dynptr (`bpf_dynptr_data` and friends): the
/// kernel's `DYNPTR_MAX_SIZE` (2^24 - 1).
pub const MAX_DYNPTR_SIZE: u64 = (1 << 24) - 1;

/// Largest ring buffer the models hold (the ring's `max_entries`). The
/// kernel allows up to 2^31 bytes for a `u32` max_entries; a replay of a
/// larger ring keeps only the recorded records (the map is not modelled).
pub const MAX_MODELLED_RINGBUF: u32 = 1 << 28;

/// Largest single region the replay env creates from a recorded size when
/// no smaller kernel bound applies (a ring buffer record of a ring that is
/// not modelled, kfunc memory).
pub const MAX_RETURNED_MEMORY: u64 = 1 << 28;

/// Bytes the replay env may create for one invocation in all (returned
/// memory of helpers and kfuncs, ring buffer records). A hostile trace can
/// hold many small events that each ask for a large region.
pub const MAX_ENV_MEMORY_PER_INVOCATION: u64 = 1 << 30;

/// Bytes the map models may hold in all (keys, values once per CPU,
/// queued and reserved records), seeded from a trace's snapshots or grown
/// by the program. An update past it is a fault of the run.
pub const MAX_MODEL_MEMORY: u64 = 1 << 30;

/// Bytes of machine state a replay session keeps in checkpoints (one every
/// `CHECKPOINT_INTERVAL` steps). Past it no more are taken: going back
/// re-runs from the last one.
pub const MAX_CHECKPOINT_MEMORY: u64 = 1 << 30;
