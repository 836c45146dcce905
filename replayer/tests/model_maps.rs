//! Map helpers through the VM with `ModelEnv`: hand-assembled programs
//! that look up, update, delete, push and pop, and the pointer semantics
//! the kernel gives them.

mod model_support;

use bpfrr_replayer::env::ModelEvent;
use bpfrr_replayer::maps::{MapType, Model};
use bpfrr_replayer::vm::{Context, FaultKind, Machine};
use bpfrr_trace::isa::{AluOp, Insn, Operand, Size, Width};
use model_support::*;

/// `key u32 = 7; v = lookup(map 0); if v: *v += 1 else update(key, 1, NOEXIST)`.
fn counter() -> Vec<Insn> {
    let mut p = vec![st(Size::W, 10, -4, 7)];
    p.extend(fp(2, -4));
    p.extend([ld_map(1, 0), call("map_lookup_elem"), jeq(0, 0, 4)]);
    p.extend([mov(1, 1), atomic_add(Size::DW, 0, 0, 1), mov(0, 0), exit()]);
    p.push(st(Size::DW, 10, -16, 1));
    p.extend([ld_map(1, 0)]);
    p.extend(fp(2, -4));
    p.extend(fp(3, -16));
    p.extend([mov(4, 1), call("map_update_elem"), exit()]);
    p
}

#[test]
fn hash_counter_accumulates_across_runs() {
    let mut e = env(vec![map("counts", MapType::Hash, 4, 8, 16)]);
    for _ in 0..3 {
        assert_eq!(run_once(&mut e, &counter(), &Context::none()).unwrap(), 0);
    }
    let entries = e.maps()[0].entries();
    assert_eq!(
        entries,
        vec![(
            7u32.to_le_bytes().to_vec(),
            vec![3u64.to_le_bytes().to_vec()]
        )]
    );
    let events = e.take_events();
    let updates: Vec<_> = events
        .iter()
        .filter(|ev| matches!(ev, ModelEvent::MapUpdate { .. }))
        .collect();
    assert_eq!(updates.len(), 1, "only the first run inserts: {events:?}");
}

#[test]
fn noexist_update_on_existing_key_returns_eexist() {
    let mut e = env(vec![map("counts", MapType::Hash, 4, 8, 16)]);
    e.maps_mut()[0].seed(&7u32.to_le_bytes(), &[0; 8]).unwrap();
    let mut direct = vec![
        st(Size::W, 10, -4, 7),
        st(Size::DW, 10, -16, 1),
        ld_map(1, 0),
    ];
    direct.extend(fp(2, -4));
    direct.extend(fp(3, -16));
    direct.extend([mov(4, 1), call("map_update_elem"), exit()]);
    let r = run_once(&mut e, &direct, &Context::none()).unwrap();
    assert_eq!(r as i64, -17);
}

/// `r6 = lookup(k0); r7 = lookup(k0); update(k0, 42); r0 = *r6 (+ r6 - r7 checked)`.
fn lookup_update_read() -> Vec<Insn> {
    let mut p = vec![st(Size::W, 10, -4, 0)];
    p.extend(fp(2, -4));
    p.extend([
        ld_map(1, 0),
        call("map_lookup_elem"),
        jeq(0, 0, 20),
        mov_reg(6, 0),
    ]);
    p.extend(fp(2, -4));
    p.extend([ld_map(1, 0), call("map_lookup_elem"), mov_reg(7, 0)]);
    // Two lookups of one key give the same pointer.
    p.push(Insn::Jump {
        width: Width::W64,
        cond: bpfrr_trace::isa::JmpCond::Ne,
        dst: 6,
        src: Operand::Reg(7),
        off: 11,
    });
    p.push(st(Size::DW, 10, -16, 42));
    p.push(ld_map(1, 0));
    p.extend(fp(2, -4));
    p.extend(fp(3, -16));
    p.extend([mov(4, 0), call("map_update_elem")]);
    p.extend([ldx(Size::DW, 0, 6, 0), exit()]);
    p.extend([mov(0, -1), exit()]);
    p
}

#[test]
fn array_update_is_seen_through_an_earlier_pointer() {
    let mut e = env(vec![map("arr", MapType::Array, 4, 8, 4)]);
    e.maps_mut()[0]
        .seed(&0u32.to_le_bytes(), &5u64.to_le_bytes())
        .unwrap();
    let r = run_once(&mut e, &lookup_update_read(), &Context::none()).unwrap();
    assert_eq!(r, 42, "arrays update in place");
}

#[test]
fn hash_update_replaces_the_element_like_the_kernel() {
    let mut e = env(vec![map("h", MapType::Hash, 4, 8, 4)]);
    e.maps_mut()[0]
        .seed(&0u32.to_le_bytes(), &5u64.to_le_bytes())
        .unwrap();
    let r = run_once(&mut e, &lookup_update_read(), &Context::none()).unwrap();
    assert_eq!(r, 5, "the old pointer still shows the replaced element");
    assert_eq!(
        e.maps()[0].entries()[0].1,
        vec![42u64.to_le_bytes().to_vec()]
    );
}

#[test]
fn global_data_persists_and_rodata_is_read_only() {
    let mut bss = map(".bss", MapType::Array, 4, 8, 1);
    let mut rodata_def = bpfrr_replayer::maps::MapDef::new(".rodata", MapType::Array, 4, 8, 1);
    rodata_def.flags = bpfrr_replayer::maps::def::BPF_F_RDONLY_PROG;
    let mut rodata = bpfrr_replayer::maps::Map::new(rodata_def, 1).unwrap();
    rodata
        .seed(&0u32.to_le_bytes(), &100u64.to_le_bytes())
        .unwrap();
    bss.seed(&0u32.to_le_bytes(), &0u64.to_le_bytes()).unwrap();
    let mut e = env(vec![bss, rodata]);
    // .bss counter += .rodata value / 100
    let p = vec![
        ld_map_value(1, 0, 0),
        ld_map_value(3, 1, 0),
        ldx(Size::DW, 4, 3, 0),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Div,
            dst: 4,
            src: Operand::Imm(100),
        },
        ldx(Size::DW, 2, 1, 0),
        add_reg(2, 4),
        stx(Size::DW, 1, 0, 2),
        mov_reg(0, 2),
        exit(),
    ];
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 1);
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 2);
    assert_eq!(
        e.maps()[0].entries()[0].1,
        vec![2u64.to_le_bytes().to_vec()]
    );
    let write_rodata = vec![
        ld_map_value(1, 1, 0),
        st(Size::DW, 1, 0, 1),
        mov(0, 0),
        exit(),
    ];
    let f = run_once(&mut e, &write_rodata, &Context::none()).unwrap_err();
    assert!(matches!(f.kind, FaultKind::ReadOnly { .. }), "{f}");
}

#[test]
fn queue_and_stack_push_pop() {
    for (t, expect) in [(MapType::Queue, 11), (MapType::Stack, 22)] {
        let mut e = env(vec![map("q", t, 0, 8, 4)]);
        let mut p = vec![st(Size::DW, 10, -8, 11)];
        p.extend([ld_map(1, 0)]);
        p.extend(fp(2, -8));
        p.extend([mov(3, 0), call("map_push_elem")]);
        p.push(st(Size::DW, 10, -8, 22));
        p.extend([ld_map(1, 0)]);
        p.extend(fp(2, -8));
        p.extend([mov(3, 0), call("map_push_elem")]);
        p.extend([ld_map(1, 0)]);
        p.extend(fp(2, -16));
        p.extend([
            call("map_pop_elem"),
            jne(0, 0, 2),
            ldx(Size::DW, 0, 10, -16),
            exit(),
            exit(),
        ]);
        assert_eq!(
            run_once(&mut e, &p, &Context::none()).unwrap(),
            expect,
            "{t:?}"
        );
        assert_eq!(e.maps()[0].entries().len(), 1);
    }
}

#[test]
fn delete_then_lookup_misses_and_array_delete_is_einval() {
    let mut h = map("h", MapType::Hash, 4, 8, 4);
    h.seed(&3u32.to_le_bytes(), &[1; 8]).unwrap();
    let a = map("a", MapType::Array, 4, 8, 4);
    let mut e = env(vec![h, a]);
    let del = |m: u32| {
        let mut p = vec![st(Size::W, 10, -4, 3), ld_map(1, m)];
        p.extend(fp(2, -4));
        p.extend([call("map_delete_elem"), exit()]);
        p
    };
    assert_eq!(run_once(&mut e, &del(0), &Context::none()).unwrap(), 0);
    assert_eq!(
        run_once(&mut e, &del(0), &Context::none()).unwrap() as i64,
        -2
    );
    assert_eq!(
        run_once(&mut e, &del(1), &Context::none()).unwrap() as i64,
        -22
    );
    assert!(e.maps()[0].entries().is_empty());
}

#[test]
fn lpm_lookup_from_a_program() {
    let mut t = map("prefixes", MapType::LpmTrie, 8, 4, 8);
    let key = |len: u32, a: [u8; 4]| [len.to_le_bytes().to_vec(), a.to_vec()].concat();
    t.seed(&key(8, [10, 0, 0, 0]), &8u32.to_le_bytes()).unwrap();
    t.seed(&key(24, [10, 1, 2, 0]), &24u32.to_le_bytes())
        .unwrap();
    let mut e = env(vec![t]);
    let addr = u32::from_le_bytes([10, 1, 2, 3]) as i32;
    let mut p = vec![
        st(Size::W, 10, -8, 32),
        st(Size::W, 10, -4, addr),
        ld_map(1, 0),
    ];
    p.extend(fp(2, -8));
    p.extend([
        call("map_lookup_elem"),
        jeq(0, 0, 2),
        ldx(Size::W, 0, 0, 0),
        exit(),
        mov(0, -1),
        exit(),
    ]);
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 24);
}

#[test]
fn a_helper_writing_into_a_ringbuf_record_is_kept() {
    // bpf_get_current_comm into a reserved record, then submit: the record
    // holds the name (the model once copied its stale cell over the write).
    let mut e = env(vec![map("events", MapType::Ringbuf, 0, 0, 4096)]);
    let p = vec![
        ld_map(1, 0),
        mov(2, 16),
        mov(3, 0),
        call("ringbuf_reserve"),
        jeq(0, 0, 7),
        mov_reg(6, 0),
        mov_reg(1, 0),
        mov(2, 16),
        call("get_current_comm"),
        mov_reg(1, 6),
        mov(2, 0),
        call("ringbuf_submit"),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 1);
    let Model::RingBuf(rb) = e.maps_mut()[0].model_mut() else {
        panic!("ringbuf")
    };
    let mut want = b"bpfrr".to_vec();
    want.resize(16, 0);
    assert_eq!(rb.drain(), vec![want]);
}

#[test]
fn ringbuf_reserve_write_submit() {
    let mut e = env(vec![map("events", MapType::Ringbuf, 0, 0, 4096)]);
    let p = vec![
        ld_map(1, 0),
        mov(2, 8),
        mov(3, 0),
        call("ringbuf_reserve"),
        jeq(0, 0, 5),
        st(Size::DW, 0, 0, 0x1234),
        mov_reg(1, 0),
        mov(2, 0),
        call("ringbuf_submit"),
        mov(0, 1),
        exit(),
    ];
    assert_eq!(run_once(&mut e, &p, &Context::none()).unwrap(), 1);
    let Model::RingBuf(rb) = e.maps_mut()[0].model_mut() else {
        panic!("ringbuf")
    };
    assert_eq!(rb.drain(), vec![0x1234u64.to_le_bytes().to_vec()]);
    assert!(e.take_events().contains(&ModelEvent::Ringbuf {
        map: 0,
        data: 0x1234u64.to_le_bytes().to_vec()
    }));
    // Writing the record after submitting it faults: the region is gone.
    let mut after = p.clone();
    after.splice(9..9, [st(Size::DW, 6, 0, 1)]);
    after.insert(6, mov_reg(6, 0));
    let f = run_once(&mut e, &after, &Context::none()).unwrap_err();
    assert!(matches!(f.kind, FaultKind::Freed { .. }), "{f}");
}

#[test]
fn lru_eviction_is_logged() {
    let mut e = env(vec![map("lru", MapType::LruHash, 4, 8, 2)]);
    let insert = |k: i32| {
        let mut p = vec![
            st(Size::W, 10, -4, k),
            st(Size::DW, 10, -16, k),
            ld_map(1, 0),
        ];
        p.extend(fp(2, -4));
        p.extend(fp(3, -16));
        p.extend([mov(4, 0), call("map_update_elem"), exit()]);
        p
    };
    for k in 1..=3 {
        assert_eq!(run_once(&mut e, &insert(k), &Context::none()).unwrap(), 0);
    }
    let evicted: Vec<_> = e
        .take_events()
        .into_iter()
        .filter_map(|ev| match ev {
            ModelEvent::Evicted { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(evicted, vec![1u32.to_le_bytes().to_vec()]);
}

#[test]
fn a_non_map_argument_is_a_clear_fault() {
    let mut e = env(vec![map("h", MapType::Hash, 4, 8, 4)]);
    let p = vec![mov(1, 5), mov_reg(2, 10), call("map_lookup_elem"), exit()];
    let f = run_once(&mut e, &p, &Context::none()).unwrap_err();
    assert!(f.to_string().contains("is not a map"), "{f}");
    let mut m = Machine::new(program(&[ld_map(1, 3), mov(0, 0), exit()]));
    let f = e.run(&mut m, 0, &Context::none()).unwrap_err();
    assert!(f.to_string().contains("only 1 maps are loaded"), "{f}");
}
