//! The directory types of format version 1, kept so version-1 traces stay
//! readable (docs/trace-format.md, "Versioning policy").
//!
//! Version 2 added `JitInfo::orig_to_xlated`; everything else is unchanged,
//! so only the types on the path from the directory to `JitInfo` are copied
//! here. Invocation blocks are identical in both versions.

use rkyv::{Archive, Deserialize, Serialize};

use super::directory::{BlockRef, TraceDirectory, TraceStats};
use super::model::{
    FuncInfo, JitInfo, KfuncName, LineInfo, LostCount, Map, Program, TailCallTarget, TraceMeta,
    VerifierInfo,
};

/// `TraceDirectory` as version 1 archived it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceDirectoryV1 {
    pub meta: TraceMeta,
    pub programs: Vec<ProgramV1>,
    pub maps: Vec<Map>,
    pub lost: Vec<LostCount>,
    pub blocks: Vec<BlockRef>,
    pub stats: TraceStats,
}

/// `Program` as version 1 archived it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramV1 {
    pub id: u32,
    pub name: String,
    pub section: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub attach_point: String,
    pub license: String,
    pub insns: Vec<[u8; 8]>,
    pub used_maps: Vec<u32>,
    pub btf: Option<Vec<u8>>,
    pub func_info: Vec<FuncInfo>,
    pub line_info: Vec<LineInfo>,
    pub kfuncs: Vec<KfuncName>,
    pub verifier: Option<VerifierInfo>,
    pub jit: Option<JitInfoV1>,
    pub tail_call_targets: Vec<TailCallTarget>,
}

/// `JitInfo` as version 1 archived it (no original-to-xlated table).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct JitInfoV1 {
    pub arch: String,
    pub image: Vec<u8>,
    pub insn_offsets: Vec<u32>,
    pub xlated: Vec<[u8; 8]>,
}

impl TraceDirectoryV1 {
    /// Validates and deserializes version-1 directory bytes (16-aligned).
    pub fn from_archive_bytes(bytes: &[u8]) -> Result<TraceDirectoryV1, String> {
        let archived = rkyv::access::<ArchivedTraceDirectoryV1, rkyv::rancor::Error>(bytes)
            .map_err(super::error::one_line)?;
        rkyv::deserialize::<TraceDirectoryV1, rkyv::rancor::Error>(archived)
            .map_err(super::error::one_line)
    }

    /// The bytes of this directory as version 1 wrote them (for tests).
    pub fn to_archive_bytes(&self) -> Result<Vec<u8>, String> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.to_vec())
            .map_err(super::error::one_line)
    }
}

impl From<TraceDirectoryV1> for TraceDirectory {
    fn from(d: TraceDirectoryV1) -> TraceDirectory {
        TraceDirectory {
            meta: d.meta,
            programs: d.programs.into_iter().map(Program::from).collect(),
            maps: d.maps,
            lost: d.lost,
            blocks: d.blocks,
            stats: d.stats,
        }
    }
}

impl From<ProgramV1> for Program {
    fn from(p: ProgramV1) -> Program {
        Program {
            id: p.id,
            name: p.name,
            section: p.section,
            prog_type: p.prog_type,
            expected_attach_type: p.expected_attach_type,
            attach_point: p.attach_point,
            license: p.license,
            insns: p.insns,
            used_maps: p.used_maps,
            btf: p.btf,
            func_info: p.func_info,
            line_info: p.line_info,
            kfuncs: p.kfuncs,
            verifier: p.verifier,
            jit: p.jit.map(|j| JitInfo {
                arch: j.arch,
                image: j.image,
                insn_offsets: j.insn_offsets,
                xlated: j.xlated,
                orig_to_xlated: Vec::new(),
            }),
            tail_call_targets: p.tail_call_targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_directory_converts_with_an_empty_xlated_table() {
        let v1 = TraceDirectoryV1 {
            meta: TraceMeta {
                format_version: 1,
                ..TraceMeta::default()
            },
            programs: vec![ProgramV1 {
                name: "p".into(),
                insns: vec![[0x95, 0, 0, 0, 0, 0, 0, 0]],
                jit: Some(JitInfoV1 {
                    arch: "x86_64".into(),
                    image: vec![0xc3],
                    insn_offsets: vec![0],
                    xlated: vec![[0x95, 0, 0, 0, 0, 0, 0, 0]],
                }),
                ..ProgramV1::default()
            }],
            ..TraceDirectoryV1::default()
        };
        let mut bytes = rkyv::util::AlignedVec::<16>::new();
        bytes.extend_from_slice(&v1.to_archive_bytes().unwrap());
        let back: TraceDirectory = TraceDirectoryV1::from_archive_bytes(&bytes).unwrap().into();
        let jit = back.programs[0].jit.as_ref().unwrap();
        assert_eq!(jit.image, vec![0xc3]);
        assert_eq!(jit.insn_offsets, vec![0]);
        assert!(jit.orig_to_xlated.is_empty());
        assert_eq!(back.meta.format_version, 1);
    }
}
