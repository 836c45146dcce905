//! `.BTF.ext`: per-section function info and line info, with names and
//! source text resolved through the `.BTF` string section.
//!
//! In an object file, instruction offsets here are BYTE offsets from the
//! start of the ELF section named by the record group (libbpf divides by 8
//! when loading); we keep bytes and let the linker convert.

use std::collections::BTreeMap;

use super::parse::{Reader, sub_slice};
use super::{Btf, BtfError};

/// One `bpf_func_info` record: the function starting at `insn_off` has BTF
/// type `type_id` (a `BTF_KIND_FUNC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtFuncInfo {
    /// Byte offset from the start of the section.
    pub insn_off: u32,
    pub type_id: u32,
}

/// One `bpf_line_info` record, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtLineInfo {
    /// Byte offset from the start of the section.
    pub insn_off: u32,
    pub file: String,
    /// The source line's text, as clang stored it.
    pub text: String,
    pub line: u32,
    pub col: u32,
}

/// The parsed `.BTF.ext`, records grouped by ELF section name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfExt {
    pub func_info: BTreeMap<String, Vec<ExtFuncInfo>>,
    pub line_info: BTreeMap<String, Vec<ExtLineInfo>>,
}

const BTF_EXT_MAGIC: u16 = 0xeb9f;

impl BtfExt {
    /// Parses `.BTF.ext`, resolving strings through `btf`. Never panics.
    pub fn parse(bytes: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        let mut r = Reader::new(bytes, "BTF.ext header");
        let magic = r.u16()?;
        if magic != BTF_EXT_MAGIC {
            return Err(BtfError::BadMagic { found: magic });
        }
        let version = r.u8()?;
        if version != 1 {
            return Err(BtfError::UnsupportedVersion { version });
        }
        let _flags = r.u8()?;
        let hdr_len = r.u32()? as usize;
        let func_off = r.u32()? as usize;
        let func_len = r.u32()? as usize;
        let line_off = r.u32()? as usize;
        let line_len = r.u32()? as usize;
        let body = bytes.get(hdr_len..).ok_or(BtfError::Truncated {
            what: "BTF.ext header",
            offset: 0,
        })?;
        let mut ext = BtfExt::default();

        let func = sub_slice(body, func_off, func_len, "BTF.ext func_info")?;
        for (section, rec) in records(func, 8, btf, "BTF.ext func_info")? {
            let mut rr = Reader::new(rec, "BTF.ext func_info");
            let info = ExtFuncInfo {
                insn_off: rr.u32()?,
                type_id: rr.u32()?,
            };
            ext.func_info.entry(section).or_default().push(info);
        }

        let line = sub_slice(body, line_off, line_len, "BTF.ext line_info")?;
        for (section, rec) in records(line, 16, btf, "BTF.ext line_info")? {
            let mut rr = Reader::new(rec, "BTF.ext line_info");
            let insn_off = rr.u32()?;
            let file_off = rr.u32()?;
            let line_off = rr.u32()?;
            let line_col = rr.u32()?;
            let info = ExtLineInfo {
                insn_off,
                file: btf.string_at(file_off).unwrap_or("").to_string(),
                text: btf.string_at(line_off).unwrap_or("").to_string(),
                line: line_col >> 10,
                col: line_col & 0x3ff,
            };
            ext.line_info.entry(section).or_default().push(info);
        }
        Ok(ext)
    }
}

/// Splits one info block into (section name, record bytes) pairs. The block
/// is `u32 rec_size` then groups of `{u32 sec_name_off, u32 num_info,
/// num_info * rec_size bytes}`. Records longer than `min_size` (a newer
/// format) keep their known prefix.
fn records<'a>(
    block: &'a [u8],
    min_size: usize,
    btf: &Btf,
    what: &'static str,
) -> Result<Vec<(String, &'a [u8])>, BtfError> {
    let mut out = Vec::new();
    if block.is_empty() {
        return Ok(out);
    }
    let mut r = Reader::new(block, what);
    let rec_size = r.u32()? as usize;
    if rec_size < min_size {
        return Err(BtfError::Malformed(format!(
            "{what} record size {rec_size} is smaller than {min_size}"
        )));
    }
    while !r.is_empty() {
        let name_off = r.u32()?;
        let count = r.u32()? as usize;
        let section = btf
            .string_at(name_off)
            .ok_or_else(|| {
                BtfError::Malformed(format!(
                    "{what} section name offset {name_off} is outside the string section"
                ))
            })?
            .to_string();
        if count.saturating_mul(rec_size) > r.remaining() {
            return Err(BtfError::Truncated { what, offset: 0 });
        }
        for _ in 0..count {
            out.push((section.clone(), r.take(rec_size)?));
        }
    }
    Ok(out)
}
