//! `encode` is the exact inverse of `decode`, and `decode` rejects what the
//! kernel rejects, with the right error.
//!
//! - Every opcode (all 256) with a grid of register, offset and immediate
//!   values: whatever decodes encodes back to the same bytes, and the decoded
//!   instructions cover every kind of instruction the ISA has.
//! - Random slots (proptest): the same property on arbitrary bit patterns.
//! - Random valid instructions: encode, then decode, gives the instruction back.
//! - A table of invalid encodings, each with the error it must give.

use std::collections::BTreeSet;

use bpfrr_trace::isa::*;
use proptest::prelude::*;

/// The slots of a decoded instruction must come back from `encode`.
fn assert_round_trip(slots: &[RawInsn]) -> Option<Insn> {
    let insn = decode(slots, 0).ok()?;
    assert_eq!(
        encode(&insn),
        slots[..insn.slots()],
        "{insn:?} does not encode back to {slots:?}"
    );
    Some(insn)
}

/// The kind of an instruction with its numbers blanked out
/// (`Alu { width: W32, op: Add, dst: _, src: Imm(_) }`).
fn shape(insn: &Insn) -> String {
    let text = format!("{insn:?}");
    let mut out = String::new();
    let mut prev = ' ';
    let mut in_number = false;
    for c in text.chars() {
        let starts_number = (c.is_ascii_digit() || c == '-') && !prev.is_ascii_alphanumeric();
        if in_number && c.is_ascii_digit() {
            prev = c;
            continue;
        }
        in_number = starts_number;
        out.push(if starts_number { '_' } else { c });
        prev = c;
    }
    out
}

#[test]
fn every_opcode_on_a_field_grid_round_trips_and_covers_the_isa() {
    let dsts = [0u8, 1, 5, 10, 11, 15];
    // src_reg doubles as the pseudo source of ld_imm64 and call (0..=6).
    let srcs = [0u8, 1, 2, 3, 4, 5, 6, 10, 11, 15];
    let offs: [i16; 10] = [0, 1, 2, 7, 8, 16, 32, -1, i16::MIN, i16::MAX];
    let imms: [i32; 22] = [
        0,
        1,
        -1,
        2,
        3,
        8,
        16,
        32,
        64,
        0x40,
        0x41,
        0x50,
        0x51,
        0xa0,
        0xa1,
        0xe0,
        0xe1,
        0xf1,
        0x100,
        0x110,
        i32::MIN,
        i32::MAX,
    ];
    let tails = [
        RawInsn::new(0, 0, 0, 0, 0),
        RawInsn::new(0, 0, 0, 0, -7),
        RawInsn::new(0, 1, 0, 0, 0),
    ];
    let mut shapes = BTreeSet::new();
    let mut decoded = 0usize;
    for code in 0..=255u8 {
        for &dst in &dsts {
            for &src in &srcs {
                for &off in &offs {
                    for &imm in &imms {
                        for &tail in &tails {
                            let slots = [RawInsn::new(code, dst, src, off, imm), tail];
                            if let Some(insn) = assert_round_trip(&slots) {
                                shapes.insert(shape(&insn));
                                decoded += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    // ALU 56 (2 widths x 14 ops x reg/imm), neg 2, movsx 2, endian 3,
    // loads 7, stores 8, atomics 2x10 + acquire/release 4x2, ld_imm64 7,
    // legacy packet loads 6, ja 2, conditional jumps 44, may_goto 1,
    // calls 4, exit 1.
    assert_eq!(shapes.len(), 171, "shapes seen: {shapes:#?}");
    assert!(decoded > 100_000, "only {decoded} decodable patterns");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn any_decodable_slot_pair_round_trips(
        code in any::<u8>(), dst in 0u8..16, src in 0u8..16, off in any::<i16>(), imm in any::<i32>(),
        tail_code in prop_oneof![Just(0u8), any::<u8>()], tail_imm in any::<i32>(),
    ) {
        let slots = [RawInsn::new(code, dst, src, off, imm), RawInsn::new(tail_code, 0, 0, 0, tail_imm)];
        assert_round_trip(&slots);
    }

    #[test]
    fn any_valid_instruction_encodes_and_decodes_back(insn in valid_insn()) {
        let slots = encode(&insn);
        prop_assert_eq!(slots.len(), insn.slots());
        prop_assert_eq!(decode(&slots, 0), Ok(insn));
    }
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::W32), Just(Width::W64)]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)]
}

fn reg() -> impl Strategy<Value = u8> {
    0u8..=10
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        reg().prop_map(Operand::Reg),
        any::<i32>().prop_map(Operand::Imm)
    ]
}

/// Every instruction `decode` can produce, with random fields.
fn valid_insn() -> impl Strategy<Value = Insn> {
    use AluOp::*;
    let alu_op = prop::sample::select(vec![
        Add, Sub, Mul, Div, SDiv, Or, And, Lsh, Rsh, Mod, SMod, Xor, Mov, Arsh,
    ]);
    let cond = prop::sample::select(vec![
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::SGt,
        JmpCond::SGe,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::SLt,
        JmpCond::SLe,
    ]);
    let rmw = prop::sample::select(vec![
        (AtomicOp::Add, false),
        (AtomicOp::Add, true),
        (AtomicOp::Or, false),
        (AtomicOp::Or, true),
        (AtomicOp::And, false),
        (AtomicOp::And, true),
        (AtomicOp::Xor, false),
        (AtomicOp::Xor, true),
        (AtomicOp::Xchg, true),
        (AtomicOp::Cmpxchg, true),
    ]);
    let kind = prop::sample::select(vec![
        Imm64Kind::Imm,
        Imm64Kind::MapFd,
        Imm64Kind::MapValue,
        Imm64Kind::BtfId,
        Imm64Kind::Func,
        Imm64Kind::MapIdx,
        Imm64Kind::MapIdxValue,
    ]);
    let endian = prop::sample::select(vec![EndianOp::ToLe, EndianOp::ToBe, EndianOp::Swap]);
    prop_oneof![
        (width(), alu_op, reg(), operand()).prop_map(|(width, op, dst, src)| Insn::Alu {
            width,
            op,
            dst,
            src
        }),
        (width(), reg()).prop_map(|(width, dst)| Insn::Neg { width, dst }),
        (
            width(),
            reg(),
            reg(),
            prop::sample::select(vec![8u8, 16, 32])
        )
            .prop_map(|(width, dst, src, bits)| {
                // 32-bit sign extension exists only for 64-bit moves.
                let bits = if width == Width::W32 && bits == 32 {
                    16
                } else {
                    bits
                };
                Insn::MovSx {
                    width,
                    dst,
                    src,
                    bits,
                }
            }),
        (endian, reg(), prop::sample::select(vec![16u8, 32, 64]))
            .prop_map(|(op, dst, bits)| Insn::Endian { op, dst, bits }),
        (size(), any::<bool>(), reg(), reg(), any::<i16>()).prop_map(
            |(size, signed, dst, src, off)| Insn::Load {
                size,
                signed: signed && size != Size::DW,
                dst,
                src,
                off,
            }
        ),
        (size(), reg(), any::<i16>(), operand()).prop_map(|(size, dst, off, src)| Insn::Store {
            size,
            dst,
            off,
            src
        }),
        (any::<bool>(), rmw, reg(), reg(), any::<i16>()).prop_map(
            |(wide, (op, fetch), dst, src, off)| Insn::Atomic {
                size: if wide { Size::DW } else { Size::W },
                op,
                fetch,
                dst,
                src,
                off,
            }
        ),
        (size(), any::<bool>(), reg(), reg(), any::<i16>()).prop_map(
            |(size, acquire, dst, src, off)| Insn::Atomic {
                size,
                op: if acquire {
                    AtomicOp::LoadAcquire
                } else {
                    AtomicOp::StoreRelease
                },
                fetch: false,
                dst,
                src,
                off,
            }
        ),
        (kind, reg(), any::<u64>()).prop_map(|(kind, dst, imm)| Insn::LoadImm64 {
            kind,
            dst,
            // A map pointer has no offset in the high half.
            imm: if matches!(kind, Imm64Kind::MapFd | Imm64Kind::MapIdx) {
                imm & 0xffff_ffff
            } else {
                imm
            },
        }),
        (
            prop::sample::select(vec![Size::B, Size::H, Size::W]),
            prop::option::of(reg()),
            any::<i32>()
        )
            .prop_map(|(size, src, imm)| Insn::LoadPacket { size, src, imm }),
        any::<i16>().prop_map(|off| Insn::Ja {
            off: off as i32,
            long: false
        }),
        any::<i32>().prop_map(|off| Insn::Ja { off, long: true }),
        (width(), cond, reg(), operand(), any::<i16>()).prop_map(|(width, cond, dst, src, off)| {
            Insn::Jump {
                width,
                cond,
                dst,
                src,
                off,
            }
        }),
        any::<i16>().prop_map(|off| Insn::MayGoto { off }),
        any::<i32>().prop_map(|id| Insn::Call(CallTarget::Helper(id))),
        any::<i32>().prop_map(|off| Insn::Call(CallTarget::Local(off))),
        (any::<i32>(), any::<i16>())
            .prop_map(|(btf_id, module)| Insn::Call(CallTarget::Kfunc { btf_id, module })),
        reg().prop_map(|r| Insn::Call(CallTarget::Reg(r))),
        Just(Insn::Exit),
    ]
}

type Decoded = Result<Insn, DecodeError>;

fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Decoded {
    decode(
        &[
            RawInsn::new(code, dst, src, off, imm),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ],
        0,
    )
}

fn reserved(code: u8, field: &'static str, value: i64) -> Decoded {
    Err(DecodeError::ReservedField {
        pc: 0,
        code,
        field,
        value,
    })
}

fn unknown(code: u8) -> Decoded {
    Err(DecodeError::UnknownOpcode { pc: 0, code })
}

fn bad_field(code: u8, field: &'static str, value: i64) -> Decoded {
    Err(DecodeError::BadField {
        pc: 0,
        code,
        field,
        value,
    })
}

#[test]
fn invalid_encodings_give_the_kernels_reason() {
    let cases: Vec<(&str, Decoded, Decoded)> = vec![
        (
            "add imm with src_reg",
            one(0x07, 1, 2, 0, 1),
            reserved(0x07, "src_reg", 2),
        ),
        (
            "add reg with imm",
            one(0x0f, 1, 2, 0, 5),
            reserved(0x0f, "imm", 5),
        ),
        (
            "add with offset",
            one(0x07, 1, 0, 1, 1),
            reserved(0x07, "off", 1),
        ),
        (
            "div with offset 2",
            one(0x3f, 1, 2, 2, 0),
            reserved(0x3f, "off", 2),
        ),
        (
            "mov imm with movsx offset",
            one(0xb7, 1, 0, 8, 0),
            reserved(0xb7, "off", 8),
        ),
        (
            "32-bit movsx of 32 bits",
            one(0xbc, 1, 2, 32, 0),
            reserved(0xbc, "off", 32),
        ),
        (
            "movsx of 7 bits",
            one(0xbf, 1, 2, 7, 0),
            reserved(0xbf, "off", 7),
        ),
        (
            "neg with source register bit",
            one(0x8f, 1, 0, 0, 0),
            unknown(0x8f),
        ),
        (
            "neg with imm",
            one(0x87, 1, 0, 0, 3),
            reserved(0x87, "imm", 3),
        ),
        (
            "be16 with src_reg",
            one(0xdc, 1, 1, 0, 16),
            reserved(0xdc, "src_reg", 1),
        ),
        (
            "be16 with offset",
            one(0xdc, 1, 0, 1, 16),
            reserved(0xdc, "off", 1),
        ),
        (
            "le of 8 bits",
            one(0xd4, 1, 0, 0, 8),
            bad_field(0xd4, "imm (byte-swap width)", 8),
        ),
        (
            "64-bit byte swap with source bit",
            one(0xdf, 1, 0, 0, 16),
            unknown(0xdf),
        ),
        ("ALU opcode 0xe0", one(0xe4, 1, 0, 0, 0), unknown(0xe4)),
        ("ALU64 opcode 0xf0", one(0xf7, 1, 0, 0, 0), unknown(0xf7)),
        (
            "ldx with imm",
            one(0x61, 1, 2, 0, 1),
            reserved(0x61, "imm", 1),
        ),
        (
            "sign-extending 64-bit load",
            one(0x99, 1, 2, 0, 0),
            unknown(0x99),
        ),
        ("ldx in ABS mode", one(0x21, 1, 2, 0, 0), unknown(0x21)),
        (
            "st with src_reg",
            one(0x62, 10, 1, -4, 0),
            reserved(0x62, "src_reg", 1),
        ),
        ("st in atomic mode", one(0xc2, 10, 0, -4, 0), unknown(0xc2)),
        (
            "stx with imm",
            one(0x63, 10, 1, -4, 9),
            reserved(0x63, "imm", 9),
        ),
        ("stx in MEMSX mode", one(0x83, 10, 1, -4, 0), unknown(0x83)),
        ("8-bit atomic add", one(0xd3, 1, 2, 0, 0), unknown(0xd3)),
        (
            "atomic op 0x02",
            one(0xdb, 1, 2, 0, 2),
            bad_field(0xdb, "atomic operation (imm)", 2),
        ),
        (
            "xchg without fetch",
            one(0xdb, 1, 2, 0, 0xe0),
            bad_field(0xdb, "atomic operation (imm)", 0xe0),
        ),
        (
            "cmpxchg without fetch",
            one(0xc3, 1, 2, 0, 0xf0),
            bad_field(0xc3, "atomic operation (imm)", 0xf0),
        ),
        (
            "ld_abs with dst_reg",
            one(0x30, 1, 0, 0, 4),
            reserved(0x30, "dst_reg", 1),
        ),
        (
            "ld_abs with offset",
            one(0x30, 0, 0, 2, 4),
            reserved(0x30, "off", 2),
        ),
        (
            "ld_abs with src_reg",
            one(0x30, 0, 1, 0, 4),
            reserved(0x30, "src_reg", 1),
        ),
        ("64-bit ld_abs", one(0x38, 0, 0, 0, 4), unknown(0x38)),
        ("32-bit ld_imm", one(0x00, 1, 0, 0, 4), unknown(0x00)),
        (
            "ld_imm64 with offset",
            one(0x18, 1, 0, 1, 4),
            reserved(0x18, "off", 1),
        ),
        (
            "ld_imm64 pseudo 7",
            one(0x18, 1, 7, 0, 4),
            Err(DecodeError::BadLdImm64Tail { pc: 0 }),
        ),
        ("ja with source bit", one(0x0d, 0, 0, 1, 0), unknown(0x0d)),
        (
            "ja with dst_reg",
            one(0x05, 1, 0, 1, 0),
            reserved(0x05, "dst_reg", 1),
        ),
        (
            "ja with imm",
            one(0x05, 0, 0, 1, 1),
            reserved(0x05, "imm", 1),
        ),
        (
            "gotol with offset",
            one(0x06, 0, 0, 1, 1),
            reserved(0x06, "off", 1),
        ),
        ("call in JMP32", one(0x86, 0, 0, 0, 1), unknown(0x86)),
        (
            "call with dst_reg",
            one(0x85, 1, 0, 0, 1),
            reserved(0x85, "dst_reg", 1),
        ),
        (
            "call with src_reg 3",
            one(0x85, 0, 3, 0, 1),
            bad_field(0x85, "src_reg of call", 3),
        ),
        (
            "helper call with offset",
            one(0x85, 0, 0, 1, 1),
            reserved(0x85, "off", 1),
        ),
        (
            "local call with offset",
            one(0x85, 0, 1, 1, 1),
            reserved(0x85, "off", 1),
        ),
        (
            "callx with imm",
            one(0x8d, 2, 0, 0, 1),
            reserved(0x8d, "imm", 1),
        ),
        (
            "callx with offset",
            one(0x8d, 2, 0, 1, 0),
            reserved(0x8d, "off", 1),
        ),
        (
            "callx r11",
            one(0x8d, 11, 0, 0, 0),
            Err(DecodeError::BadRegister { pc: 0, reg: 11 }),
        ),
        ("exit in JMP32", one(0x96, 0, 0, 0, 0), unknown(0x96)),
        (
            "exit with offset",
            one(0x95, 0, 0, 1, 0),
            reserved(0x95, "off", 1),
        ),
        (
            "may_goto with src_reg 1",
            one(0xe5, 0, 1, 1, 0),
            unknown(0xe5),
        ),
        (
            "may_goto with imm",
            one(0xe5, 0, 0, 1, 1),
            reserved(0xe5, "imm", 1),
        ),
        ("may_goto in JMP32", one(0xe6, 0, 0, 1, 0), unknown(0xe6)),
        ("jump opcode 0xf0", one(0xf5, 1, 0, 1, 0), unknown(0xf5)),
        (
            "jeq reg with imm",
            one(0x1d, 1, 2, 1, 4),
            reserved(0x1d, "imm", 4),
        ),
        (
            "jeq imm with src_reg",
            one(0x15, 1, 2, 1, 4),
            reserved(0x15, "src_reg", 2),
        ),
        (
            "dst r11",
            one(0xb7, 11, 0, 0, 1),
            Err(DecodeError::BadRegister { pc: 0, reg: 11 }),
        ),
        (
            "src r15",
            one(0xbf, 1, 15, 0, 0),
            Err(DecodeError::BadRegister { pc: 0, reg: 15 }),
        ),
    ];
    for (what, got, want) in cases {
        assert_eq!(got, want, "{what}");
        // Every error names the instruction.
        if let Err(e) = got {
            assert!(e.to_string().starts_with("instruction 0: "), "{what}: {e}");
        }
    }
}

#[test]
fn ld_imm64_errors() {
    let ld = RawInsn::new(0x18, 1, 0, 0, 4);
    assert_eq!(
        decode(&[ld], 0),
        Err(DecodeError::IncompleteLdImm64 { pc: 0 })
    );
    for tail in [
        RawInsn::new(0x95, 0, 0, 0, 0),
        RawInsn::new(0, 1, 0, 0, 0),
        RawInsn::new(0, 0, 1, 0, 0),
        RawInsn::new(0, 0, 0, 1, 0),
    ] {
        assert_eq!(
            decode(&[ld, tail], 0),
            Err(DecodeError::BadLdImm64Tail { pc: 0 }),
            "{tail:?}"
        );
    }
    let tail = RawInsn::new(0, 0, 0, 0, 0);
    assert_eq!(
        decode(&[RawInsn::new(0x18, 1, 7, 0, 4), tail], 0),
        Err(DecodeError::BadField {
            pc: 0,
            code: 0x18,
            field: "src_reg of ld_imm64",
            value: 7
        })
    );
    // A map fd has no offset: the high half must be zero (MAP_VALUE's is the offset).
    let high = RawInsn::new(0, 0, 0, 0, 8);
    assert_eq!(
        decode(&[RawInsn::new(0x18, 1, 1, 0, 4), high], 0),
        reserved(0x18, "imm of the second ld_imm64 slot", 8)
    );
    assert!(decode(&[RawInsn::new(0x18, 1, 2, 0, 4), high], 0).is_ok());
}

#[test]
fn check_rejects_malformed_programs_naming_the_instruction() {
    let exit = RawInsn::new(0x95, 0, 0, 0, 0);
    let mov = RawInsn::new(0xb7, 0, 0, 0, 0);
    let ja = |off: i16| RawInsn::new(0x05, 0, 0, off, 0);
    let ld = RawInsn::new(0x18, 1, 0, 0, 4);
    let tail = RawInsn::new(0, 0, 0, 0, 0);
    assert_eq!(check(&[]), Err(CheckError::Empty));
    assert_eq!(check(&[mov]), Err(CheckError::FallsOffEnd { pc: 0 }));
    assert_eq!(check(&[ld, tail]), Err(CheckError::FallsOffEnd { pc: 0 }));
    assert_eq!(
        check(&[ja(5), exit]),
        Err(CheckError::JumpOutOfRange {
            pc: 0,
            target: 6,
            len: 2
        })
    );
    assert_eq!(
        check(&[ja(-2), exit]),
        Err(CheckError::JumpOutOfRange {
            pc: 0,
            target: -1,
            len: 2
        })
    );
    assert_eq!(
        check(&[ja(1), ld, tail, exit]),
        Err(CheckError::JumpIntoLdImm64 { pc: 0, target: 2 })
    );
    // A local call and a callback reference (ld_imm64 func) are branch targets too.
    assert_eq!(
        check(&[RawInsn::new(0x85, 0, 1, 0, 7), exit]),
        Err(CheckError::JumpOutOfRange {
            pc: 0,
            target: 8,
            len: 2
        })
    );
    assert_eq!(
        check(&[RawInsn::new(0x18, 1, 4, 0, -3), tail, exit]),
        Err(CheckError::JumpOutOfRange {
            pc: 0,
            target: -2,
            len: 3
        })
    );
    for e in [
        check(&[mov]).unwrap_err(),
        check(&[ja(5), exit]).unwrap_err(),
        check(&[ja(1), ld, tail, exit]).unwrap_err(),
    ] {
        assert!(e.to_string().starts_with("instruction 0: "), "{e}");
    }
    let ok = check(&[ld, tail, ja(-3), exit]).unwrap();
    assert_eq!(ok.insns[1], None);
    assert_eq!(ok.insns[3], Some(Insn::Exit));
}
