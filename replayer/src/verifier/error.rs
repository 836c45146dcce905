//! The verifier's final error: which common rejection it is, and a plain
//! explanation with a fix hint for each.

use serde::Serialize;

/// The common rejections, recognised from the message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)`
    PacketOutOfRange,
    /// `R0 invalid mem access 'map_value_or_null'` (or any `*_or_null`)
    NullablePointerDeref,
    /// `R1 invalid mem access 'scalar'`
    ScalarDeref,
    /// `invalid mem access '<other type>'`
    InvalidMemAccess,
    /// `back-edge from insn 10 to 5`
    BackEdge,
    /// `infinite loop detected at insn 1`
    InfiniteLoop,
    /// `BPF program is too large. Processed 1000001 insn`
    ProgramTooLarge,
    /// `The sequence of 8193 jumps is too complex.`
    TooComplex,
    /// `invalid write to stack R10 off=-520 size=8`, `invalid stack off=...`
    InvalidStackOffset,
    /// `invalid indirect read from stack R2 off -8+0 size 4`, `invalid read from stack`
    UninitializedStackRead,
    /// `R0 !read_ok`
    ReturnValueNotSet,
    /// `R2 !read_ok`
    UninitializedRegister,
    /// `Unreleased reference id=2 alloc_insn=5`, `... would lead to reference leak`
    UnreleasedReference,
    /// `misaligned stack access off 0+0+-6 size 4`, `misaligned packet access ...`
    MisalignedAccess,
    /// `invalid access to map value, value_size=8 off=8 size=4`
    MapValueOutOfRange,
    /// `math between pkt pointer and register with unbounded min value is not allowed`
    UnboundedPointerMath,
    /// `R2 min value is negative, either use unsigned or 'var &= const'`
    NegativeSize,
    /// `R2 unbounded memory access, use 'var &= const' or 'if (var < const)'`
    UnboundedMemAccess,
    /// `invalid func unknown#999`, `unknown func bpf_xyz#123`
    UnknownHelper,
    /// `program of this type cannot use helper bpf_skb_load_bytes#26`
    HelperNotAllowed,
    /// `cannot call GPL-restricted function from non-GPL compatible program`
    GplOnlyHelper,
    /// `R1 type=scalar expected=map_ptr`
    ArgumentType,
    /// `write into map forbidden`, `only read from bpf_array is supported`
    ReadOnlyMap,
    /// `invalid bpf_context access off=400 size=4`
    InvalidContextAccess,
    /// `dereference of modified ctx ptr R1 off=4 disallowed`
    ModifiedContextPointer,
    /// `combined stack size of 2 calls is 640. Too large`
    CombinedStackTooLarge,
    /// `At program exit the register R0 has smin=5 smax=5 should have been in [0, 3]`
    InvalidReturnValue,
    /// `R2 pointer arithmetic on pkt_end prohibited`
    ProhibitedPointerArithmetic,
    /// `R1 pointer comparison prohibited`
    ProhibitedPointerComparison,
    /// `R0 leaks addr as return value`
    PointerLeak,
    /// `unreachable insn 5`
    UnreachableInsn,
    /// `jump out of range from insn 3 to 12`
    JumpOutOfRange,
    /// `the call stack of 9 frames is too deep`
    CallStackTooDeep,
    /// Anything else: the message says it all.
    Other,
}

/// A plain explanation of one kind of rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// A few words: "packet access without a bounds check".
    pub title: &'static str,
    /// What the verifier could not prove.
    pub explanation: &'static str,
    /// How such programs are usually fixed.
    pub fix: &'static str,
}

impl ErrorKind {
    /// Recognises the error from its message lines (first match wins; the
    /// order puts specific patterns before general ones).
    pub fn classify(message: &str) -> ErrorKind {
        let m = message;
        let has = |s: &str| m.contains(s);
        if has("invalid access to packet") {
            ErrorKind::PacketOutOfRange
        } else if has("invalid mem access '") {
            let ty = m
                .split("invalid mem access '")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .unwrap_or("");
            if ty.contains("or_null") {
                ErrorKind::NullablePointerDeref
            } else if ty == "scalar" || ty == "inv" {
                ErrorKind::ScalarDeref
            } else {
                ErrorKind::InvalidMemAccess
            }
        } else if has("back-edge from insn") {
            ErrorKind::BackEdge
        } else if has("infinite loop detected") {
            ErrorKind::InfiniteLoop
        } else if has("BPF program is too large") {
            ErrorKind::ProgramTooLarge
        } else if has("is too complex") || has("too many states") {
            ErrorKind::TooComplex
        } else if has("invalid indirect read from stack")
            || has("invalid read from stack")
            || has("invalid indirect access to stack")
        {
            ErrorKind::UninitializedStackRead
        } else if has("invalid write to stack")
            || has("invalid stack off")
            || has("invalid variable-offset")
            || has("invalid unbounded variable-offset")
        {
            ErrorKind::InvalidStackOffset
        } else if has("R0 !read_ok") {
            ErrorKind::ReturnValueNotSet
        } else if has("!read_ok") {
            ErrorKind::UninitializedRegister
        } else if has("Unreleased reference") || has("reference leak") {
            ErrorKind::UnreleasedReference
        } else if has("misaligned") {
            ErrorKind::MisalignedAccess
        } else if has("invalid access to map value") || has("invalid access to map key") {
            ErrorKind::MapValueOutOfRange
        } else if has("with unbounded min value is not allowed") || has("unbounded min value") {
            ErrorKind::UnboundedPointerMath
        } else if has("min value is negative") {
            ErrorKind::NegativeSize
        } else if has("unbounded memory access") {
            ErrorKind::UnboundedMemAccess
        } else if has("program of this type cannot use helper") {
            ErrorKind::HelperNotAllowed
        } else if has("invalid func") || has("unknown func") {
            ErrorKind::UnknownHelper
        } else if has("GPL-restricted") || has("GPL compatible") {
            ErrorKind::GplOnlyHelper
        } else if has(" type=") && has(" expected=") {
            ErrorKind::ArgumentType
        } else if has("write into map forbidden")
            || has("only read from bpf_array is supported")
            || has("cannot write into")
        {
            ErrorKind::ReadOnlyMap
        } else if has("invalid bpf_context access") {
            ErrorKind::InvalidContextAccess
        } else if has("dereference of modified ctx ptr") {
            ErrorKind::ModifiedContextPointer
        } else if has("combined stack size") {
            ErrorKind::CombinedStackTooLarge
        } else if has("At program exit the register R0") || has("should have been in") {
            ErrorKind::InvalidReturnValue
        } else if has("pointer arithmetic on") && has("prohibited") {
            ErrorKind::ProhibitedPointerArithmetic
        } else if has("pointer comparison prohibited") {
            ErrorKind::ProhibitedPointerComparison
        } else if has("leaks addr") {
            ErrorKind::PointerLeak
        } else if has("unreachable insn") {
            ErrorKind::UnreachableInsn
        } else if has("jump out of range") {
            ErrorKind::JumpOutOfRange
        } else if has("frames is too deep") {
            ErrorKind::CallStackTooDeep
        } else {
            ErrorKind::Other
        }
    }

    /// Errors about the whole program rather than one instruction.
    pub fn is_whole_program(self) -> bool {
        matches!(self, ErrorKind::CombinedStackTooLarge)
    }

    /// A plain explanation and a fix hint.
    pub fn explain(self) -> Explanation {
        let (title, explanation, fix) = match self {
            ErrorKind::PacketOutOfRange => (
                "packet access without a bounds check",
                "The program reads or writes packet bytes the verifier cannot prove are inside the packet. `r=N` in the pointer's state is how many bytes after it were checked; the access needs off+size <= r.",
                "Before the access, compare against data_end: `if ((void *)(p + 1) > data_end) return XDP_PASS;` (check the end of what you read, with the same pointer you read through).",
            ),
            ErrorKind::NullablePointerDeref => (
                "possibly-NULL pointer used without a check",
                "The pointer comes from a helper that may return NULL (bpf_map_lookup_elem, bpf_ringbuf_reserve, bpf_sk_lookup_*...). Until the program tests it, the verifier treats it as `*_or_null` and forbids dereferencing it.",
                "Test it right after the call: `v = bpf_map_lookup_elem(&m, &k); if (!v) return ...;` and use `v` only after the test (not a copy made before it).",
            ),
            ErrorKind::ScalarDeref => (
                "a number used as a pointer",
                "The register holds a scalar (a plain number), not a pointer the verifier knows, so it cannot be dereferenced. Integers cast to pointers, values loaded from maps or the context that are not pointer fields, and pointers whose provenance was lost (e.g. through a 32-bit operation) all end up as scalars.",
                "Read memory through a real pointer (context field like ctx->data, map value, stack), or use bpf_probe_read_kernel/user for arbitrary addresses.",
            ),
            ErrorKind::InvalidMemAccess => (
                "memory access through a pointer of the wrong kind",
                "Loads and stores are allowed only through pointers to memory the program may touch (stack, map value, packet, context fields, helper-returned memory). This pointer kind cannot be dereferenced here.",
                "Check which helper or field produced the pointer; some (pkt_end, map_ptr, sockets) can only be compared or passed to helpers.",
            ),
            ErrorKind::BackEdge => (
                "loop not allowed",
                "The control-flow check found a jump backwards. Loops are allowed only for privileged loaders (CAP_BPF or root); without them every back-edge is rejected.",
                "Load with CAP_BPF/root, or unroll the loop (`#pragma unroll` with a constant trip count), or use bpf_loop().",
            ),
            ErrorKind::InfiniteLoop => (
                "the loop never makes progress",
                "The verifier reached the loop head twice with exactly the same state, so nothing in the loop moves it toward its exit.",
                "Make the loop condition depend on something the loop changes (a counter with a constant bound), or use bpf_loop() / bpf_for().",
            ),
            ErrorKind::ProgramTooLarge => (
                "verification did not finish (1 million instructions)",
                "The verifier explores every path; it gave up after processing its limit of instructions. Usually a loop whose trip count it cannot bound, or many branches multiplying the paths.",
                "Give loops a small constant bound (`for (i = 0; i < 64 && i < n; i++)`), use bpf_loop() for long loops, or split the program (tail calls, bpf-to-bpf global functions).",
            ),
            ErrorKind::TooComplex => (
                "too many branches to explore",
                "The verifier keeps a stack of branches still to check; this program produced too many at once.",
                "Reduce nesting of conditions inside loops, move work into global (separately verified) functions, or use bpf_loop().",
            ),
            ErrorKind::InvalidStackOffset => (
                "stack access outside the frame",
                "Each function has at most 512 bytes of stack at negative offsets from r10; this access falls outside it (or uses an offset the verifier cannot bound).",
                "Keep stack buffers small (use a per-CPU array map for big scratch space) and index them with bounded constants.",
            ),
            ErrorKind::UninitializedStackRead => (
                "reading stack bytes nobody wrote",
                "The program (or a helper it calls) reads stack bytes that were never initialised, which could leak kernel data.",
                "Initialise the variable or buffer before passing it (`__u32 key = 0;`, `struct x v = {};` or __builtin_memset).",
            ),
            ErrorKind::ReturnValueNotSet => (
                "the return value was never set",
                "At `exit` r0 holds the program's return value, but on this path nothing wrote r0 (or a call clobbered it and it was not set again).",
                "Make sure every path returns a value; in assembly, set r0 before `exit`.",
            ),
            ErrorKind::UninitializedRegister => (
                "a register is read before it is written",
                "The instruction reads a register that holds nothing on this path. At entry only r1 (context) and r10 (frame pointer) are set, and every helper call clobbers r1-r5.",
                "Keep values needed after a call in r6-r9 (callee-saved) or on the stack; in assembly, write the register first.",
            ),
            ErrorKind::UnreleasedReference => (
                "an acquired reference is not released on some path",
                "A resource taken by the program (ring buffer reservation, socket lookup, task/cgroup reference, spin lock...) must be released on every path before exit. The listed alloc_insn is where it was taken.",
                "On every path after the acquire, release it: bpf_ringbuf_submit/discard, bpf_sk_release, bpf_task_release...; check early returns.",
            ),
            ErrorKind::MisalignedAccess => (
                "misaligned access",
                "The access is not aligned to its size. Stack accesses are always checked; packet and map accesses are checked on architectures without efficient unaligned access or with BPF_F_STRICT_ALIGNMENT.",
                "Align the offset to the access size, or copy the bytes with __builtin_memcpy / smaller loads.",
            ),
            ErrorKind::MapValueOutOfRange => (
                "access outside the map value",
                "The offset plus the access size is outside the map's value_size (or the variable part of the offset is not bounded tightly enough).",
                "Check the index against the value's size before the access (`if (i >= N) return ...;`) and make sure the value type matches the map definition.",
            ),
            ErrorKind::UnboundedPointerMath => (
                "pointer moved by an unbounded value",
                "A value whose minimum the verifier does not know was added to a pointer, so the result could point anywhere, including before the start of the object.",
                "Bound the value first: use an unsigned type and an upper bound check, or mask it (`off &= 0xff`), before adding it to the pointer.",
            ),
            ErrorKind::NegativeSize => (
                "a size or offset that may be negative",
                "A helper's size argument (or an offset) is a signed value whose minimum may be negative.",
                "Use an unsigned type and bound it: `if (n > sizeof(buf)) n = sizeof(buf);` or `n &= (sizeof(buf) - 1);` right before the call.",
            ),
            ErrorKind::UnboundedMemAccess => (
                "a size the verifier cannot bound",
                "A helper is given a size with no upper bound, so it could access past the end of the buffer.",
                "Bound it right before the call: `if (n > sizeof(buf)) return 0;` or `n &= sizeof(buf) - 1;` (for a power-of-two buffer).",
            ),
            ErrorKind::UnknownHelper => (
                "unknown helper",
                "The program calls a helper number this kernel does not have (too new a helper, or a wrong number).",
                "Check the helper exists in this kernel (`bpftool feature probe`), or call a kfunc / an older equivalent.",
            ),
            ErrorKind::HelperNotAllowed => (
                "helper not available to this program type",
                "Each program type has its own set of helpers; this one is not offered here (for example skb helpers in XDP).",
                "Use the equivalent for this program type (bpf_xdp_load_bytes for XDP, direct packet access), or change the program type / section name.",
            ),
            ErrorKind::GplOnlyHelper => (
                "GPL-only helper from a non-GPL program",
                "Some helpers (tracing, probe_read, printk...) may only be called by programs whose license is GPL-compatible.",
                "Declare a GPL-compatible license: `char LICENSE[] SEC(\"license\") = \"GPL\";` (or \"Dual BSD/GPL\").",
            ),
            ErrorKind::ArgumentType => (
                "helper argument of the wrong type",
                "A helper argument register holds a different kind of value than the helper accepts (`type=` is what it holds, `expected=` what the helper takes).",
                "Pass the right object: a map as `&map`, a pointer to stack or map memory for buffers, a checked non-NULL pointer where NULL is not accepted.",
            ),
            ErrorKind::ReadOnlyMap => (
                "write to read-only memory",
                "The map (a `const` global in .rodata, or a map created with BPF_F_RDONLY_PROG) is read-only for programs.",
                "Put writable globals in .data/.bss (drop `const`), or write through a normal map.",
            ),
            ErrorKind::InvalidContextAccess => (
                "invalid context field access",
                "The program reads or writes the context (ctx / r1) at an offset or size that is not an accessible field of this program type's context struct.",
                "Use the struct's fields (ctx->data, skb->len...) with their declared size; some fields are read-only or exist only for some attach types.",
            ),
            ErrorKind::ModifiedContextPointer => (
                "context read through a moved pointer",
                "The kernel rewrites each context access by its constant offset from r1, so the context pointer itself must not be moved before the access.",
                "Access fields as ctx->field with the original pointer, not through ctx + n.",
            ),
            ErrorKind::CombinedStackTooLarge => (
                "the call chain uses more than 512 bytes of stack",
                "The stack of a function and all the functions it calls adds up to more than 512 bytes.",
                "Shrink the buffers (move them to a per-CPU array map), or mark small helpers `static __always_inline` so their frames merge.",
            ),
            ErrorKind::InvalidReturnValue => (
                "return value outside the allowed range",
                "This program type may only return certain values (e.g. cgroup skb 0..3, LSM 0 or -errno) and the verifier could not prove r0 is within them.",
                "Return one of the allowed values on every path; clamp computed values.",
            ),
            ErrorKind::ProhibitedPointerArithmetic => (
                "arithmetic on a pointer that does not allow it",
                "Only some pointers may be moved (packet data, stack, map values, memory); pkt_end, map_ptr, context and socket pointers may not.",
                "Move the data pointer and compare it against data_end, instead of moving data_end.",
            ),
            ErrorKind::ProhibitedPointerComparison => (
                "pointer comparison not allowed",
                "Pointers of these kinds cannot be compared (it could leak kernel addresses).",
                "Compare packet pointers only against pkt_end / other packet pointers, and other pointers only against NULL.",
            ),
            ErrorKind::PointerLeak => (
                "a kernel address would leak",
                "Without privileges, programs may not return or store pointers where userspace could read them.",
                "Return or store a number, not a pointer; or load with CAP_BPF/CAP_PERFMON.",
            ),
            ErrorKind::UnreachableInsn => (
                "unreachable instruction",
                "Some instruction can never be executed; the verifier rejects dead code.",
                "Remove the dead code (usually a compiler or hand-written assembly issue).",
            ),
            ErrorKind::JumpOutOfRange => (
                "jump outside the program",
                "A jump target is outside the program or inside a 16-byte ld_imm64.",
                "Fix the jump offset (hand-written assembly) or report a compiler bug.",
            ),
            ErrorKind::CallStackTooDeep => (
                "too many nested calls",
                "bpf-to-bpf calls may nest at most 8 frames.",
                "Inline some functions (`static __always_inline`) or flatten the recursion.",
            ),
            ErrorKind::Other => (
                "rejected by the verifier",
                "The verifier's message above says what it could not prove.",
                "Look at the register states on the path to the failing instruction: they show what the verifier believed.",
            ),
        };
        Explanation {
            title,
            explanation,
            fix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_real_messages() {
        let cases = [
            (
                "invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)\nR1 offset is outside of the packet",
                ErrorKind::PacketOutOfRange,
            ),
            (
                "R0 invalid mem access 'map_value_or_null'",
                ErrorKind::NullablePointerDeref,
            ),
            (
                "R1 invalid mem access 'ptr_or_null_task_struct'",
                ErrorKind::NullablePointerDeref,
            ),
            ("R1 invalid mem access 'scalar'", ErrorKind::ScalarDeref),
            ("R1 invalid mem access 'inv'", ErrorKind::ScalarDeref),
            (
                "R2 invalid mem access 'pkt_end'",
                ErrorKind::InvalidMemAccess,
            ),
            ("back-edge from insn 10 to 5", ErrorKind::BackEdge),
            (
                "infinite loop detected at insn 1\ncur state: R0=0",
                ErrorKind::InfiniteLoop,
            ),
            (
                "BPF program is too large. Processed 1000001 insn",
                ErrorKind::ProgramTooLarge,
            ),
            (
                "The sequence of 8193 jumps is too complex.",
                ErrorKind::TooComplex,
            ),
            (
                "invalid write to stack R10 off=-520 size=8",
                ErrorKind::InvalidStackOffset,
            ),
            (
                "invalid indirect read from stack R2 off -4+0 size 4",
                ErrorKind::UninitializedStackRead,
            ),
            ("R0 !read_ok", ErrorKind::ReturnValueNotSet),
            ("R2 !read_ok", ErrorKind::UninitializedRegister),
            (
                "Unreleased reference id=2 alloc_insn=5\nBPF_EXIT instruction in main prog would lead to reference leak",
                ErrorKind::UnreleasedReference,
            ),
            (
                "misaligned stack access off 0+0+-6 size 4",
                ErrorKind::MisalignedAccess,
            ),
            (
                "invalid access to map value, value_size=8 off=8 size=4",
                ErrorKind::MapValueOutOfRange,
            ),
            (
                "math between pkt pointer and register with unbounded min value is not allowed",
                ErrorKind::UnboundedPointerMath,
            ),
            (
                "R2 min value is negative, either use unsigned or 'var &= const'",
                ErrorKind::NegativeSize,
            ),
            (
                "R2 unbounded memory access, use 'var &= const' or 'if (var < const)'",
                ErrorKind::UnboundedMemAccess,
            ),
            ("invalid func unknown#999", ErrorKind::UnknownHelper),
            (
                "program of this type cannot use helper bpf_skb_load_bytes#26",
                ErrorKind::HelperNotAllowed,
            ),
            (
                "cannot call GPL-restricted function from non-GPL compatible program",
                ErrorKind::GplOnlyHelper,
            ),
            ("R1 type=scalar expected=map_ptr", ErrorKind::ArgumentType),
            (
                "write into map forbidden, value_size=4 off=0 size=4",
                ErrorKind::ReadOnlyMap,
            ),
            (
                "invalid bpf_context access off=400 size=4",
                ErrorKind::InvalidContextAccess,
            ),
            (
                "dereference of modified ctx ptr R1 off=4 disallowed",
                ErrorKind::ModifiedContextPointer,
            ),
            (
                "combined stack size of 2 calls is 640. Too large",
                ErrorKind::CombinedStackTooLarge,
            ),
            (
                "At program exit the register R0 has smin=5 smax=5 should have been in [0, 3]",
                ErrorKind::InvalidReturnValue,
            ),
            (
                "R2 pointer arithmetic on pkt_end prohibited",
                ErrorKind::ProhibitedPointerArithmetic,
            ),
            ("something new", ErrorKind::Other),
        ];
        for (msg, kind) in cases {
            assert_eq!(ErrorKind::classify(msg), kind, "{msg}");
            let e = kind.explain();
            assert!(!e.title.is_empty() && !e.explanation.is_empty() && !e.fix.is_empty());
        }
    }
}
