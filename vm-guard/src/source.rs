//! Where guard bytecode comes from: rbpf assembly text (with labels and comments), raw
//! bytecode, or an ELF object built by `clang -target bpf -O2 -c` from restricted C.

use std::{collections::HashMap, panic};

use object::{
    Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionFlags,
    SectionKind,
};

use crate::verifier::PSEUDO_RODATA;

/// What a file holds, by its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An ELF object (starts with `\x7fELF`).
    Elf,
    /// rbpf assembly text (valid UTF-8 without NUL bytes).
    Assembly,
    /// Raw little-endian bytecode, 8 bytes per instruction slot.
    Raw,
}

/// Why a source could not be turned into bytecode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Assembly that does not assemble.
    #[error("assembly line {line}: {message}")]
    Assembly {
        /// 1-based source line (0 when rbpf's assembler does not say).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Raw bytecode whose length is not a multiple of 8.
    #[error("raw bytecode of {0} bytes is not a whole number of 8-byte instructions")]
    RawLength(usize),
    /// An ELF object we cannot take a guard from.
    #[error("ELF object: {0}")]
    Elf(String),
}

/// Guesses what `bytes` hold.
pub fn sniff(bytes: &[u8]) -> SourceKind {
    if bytes.starts_with(b"\x7fELF") {
        SourceKind::Elf
    } else if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        SourceKind::Assembly
    } else {
        SourceKind::Raw
    }
}

/// Bytecode from any source, by [`sniff`]ing it.
pub fn load(bytes: &[u8]) -> Result<Vec<u8>, SourceError> {
    match sniff(bytes) {
        SourceKind::Elf => from_elf(bytes, None),
        SourceKind::Assembly => assemble(std::str::from_utf8(bytes).unwrap_or_default()),
        SourceKind::Raw => from_raw(bytes),
    }
}

/// Raw bytecode, checked for length only (the verifier does the rest).
pub fn from_raw(bytes: &[u8]) -> Result<Vec<u8>, SourceError> {
    if bytes.len() % 8 != 0 {
        return Err(SourceError::RawLength(bytes.len()));
    }
    Ok(bytes.to_vec())
}

fn asm_err(line: usize, message: impl Into<String>) -> SourceError {
    SourceError::Assembly {
        line,
        message: message.into(),
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn is_register(s: &str) -> bool {
    s.strip_prefix('r')
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
}

/// rbpf's assembler unwraps its number parses; reject what would make it panic.
fn check_numbers(line: &str, lineno: usize) -> Result<(), SourceError> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let prev_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i].is_ascii_digit() && !prev_word {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let tok = &line[start..i];
            let ok = match tok.strip_prefix("0x") {
                Some(hex) => hex.len() <= 16 && u64::from_str_radix(hex, 16).is_ok(),
                None => tok.parse::<i64>().is_ok(),
            };
            if !ok {
                return Err(asm_err(
                    lineno,
                    format!("number `{tok}` is malformed or out of range"),
                ));
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Assembles rbpf assembly text: rbpf's syntax (`ldxw r2, [r1+4]`, `jeq r2, 3, +1`, `exit`),
/// plus comments (`#`, `;` or `//` to the end of the line) and labels (`name:` before an
/// instruction, on its own line or not) usable as jump targets.
pub fn assemble(text: &str) -> Result<Vec<u8>, SourceError> {
    struct Line<'a> {
        no: usize,
        mnemonic: &'a str,
        operands: Vec<String>,
    }
    let mut labels: HashMap<&str, usize> = HashMap::new();
    let mut lines: Vec<(Line<'_>, usize)> = Vec::new();
    let mut slot = 0usize;
    for (idx, raw) in text.lines().enumerate() {
        let no = idx + 1;
        let mut l = raw;
        for marker in ["#", ";", "//"] {
            if let Some(p) = l.find(marker) {
                l = &l[..p];
            }
        }
        let mut l = l.trim();
        while let Some(colon) = l.find(':') {
            let name = l[..colon].trim();
            if !is_label_name(name) {
                return Err(asm_err(no, format!("bad label `{name}`")));
            }
            if labels.insert(name, slot).is_some() {
                return Err(asm_err(no, format!("label `{name}` defined twice")));
            }
            l = l[colon + 1..].trim();
        }
        if l.is_empty() {
            continue;
        }
        check_numbers(l, no)?;
        let (mnemonic, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let operands: Vec<String> = rest
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let width = if mnemonic == "lddw" { 2 } else { 1 };
        lines.push((
            Line {
                no,
                mnemonic,
                operands,
            },
            slot,
        ));
        slot += width;
    }
    let mut out = String::new();
    let mut line_of_slot = Vec::new();
    for (mut line, at) in lines {
        if line.mnemonic.starts_with('j') {
            if let Some(last) = line.operands.last_mut() {
                if is_label_name(last) && !is_register(last) {
                    let Some(&target) = labels.get(last.as_str()) else {
                        return Err(asm_err(line.no, format!("unknown label `{last}`")));
                    };
                    let off = target as i64 - (at as i64 + 1);
                    *last = format!("{off:+}");
                }
            }
        }
        out.push_str(line.mnemonic);
        out.push(' ');
        out.push_str(&line.operands.join(", "));
        out.push('\n');
        line_of_slot.push(line.no);
    }
    // rbpf's assembler is a parser combinator over the whole text; a panic in it (it unwraps
    // a few conversions) must not take the caller down with it.
    let result = panic::catch_unwind(|| rbpf::assembler::assemble(&out));
    match result {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(msg)) => {
            // rbpf reports "line:column" of the preprocessed text; map it back.
            let line = msg
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|_| msg.contains("line"))
                .and_then(|l| line_of_slot.get(l.saturating_sub(1)).copied())
                .unwrap_or(0);
            Err(asm_err(line, msg.replace('\n', " ")))
        }
        Err(_) => Err(asm_err(0, "rbpf's assembler panicked on this input")),
    }
}

/// A guard program and the read-only data it loads from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardCode {
    /// Bytecode; an `lddw` of read-only data has source [`PSEUDO_RODATA`] and the offset
    /// into `rodata` in its second slot.
    pub code: Vec<u8>,
    /// The object's `.rodata*` sections, each 8-byte aligned, in section order.
    pub rodata: Vec<u8>,
}

/// Largest read-only data accepted from an object.
pub const MAX_RODATA: usize = 64 * 1024;

/// A guard from any source, by [`sniff`]ing it; only ELF objects carry read-only data.
pub fn load_guard(bytes: &[u8]) -> Result<GuardCode, SourceError> {
    match sniff(bytes) {
        SourceKind::Elf => from_elf_with_rodata(bytes, None),
        _ => Ok(GuardCode {
            code: load(bytes)?,
            rodata: Vec::new(),
        }),
    }
}

/// The guard program in an ELF object from `clang -target bpf -O2 -c`, refusing read-only
/// data (see [`from_elf_with_rodata`]).
pub fn from_elf(bytes: &[u8], section: Option<&str>) -> Result<Vec<u8>, SourceError> {
    let g = from_elf_with_rodata(bytes, section)?;
    if !g.rodata.is_empty() {
        return Err(SourceError::Elf(
            "the guard loads read-only data (.rodata): load it with `from_elf_with_rodata`".into(),
        ));
    }
    Ok(g.code)
}

fn guard_section<'d, 'f>(
    file: &'f object::File<'d>,
    section: Option<&str>,
) -> Result<object::Section<'d, 'f>, SourceError> {
    let e = |m: String| SourceError::Elf(m);
    let is_exec = |s: &object::Section<'_, '_>| {
        s.kind() == SectionKind::Text
            || matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0)
    };
    let candidates: Vec<_> = file
        .sections()
        .filter(|s| is_exec(s) && s.size() > 0)
        .collect();
    match section {
        Some(name) => candidates
            .into_iter()
            .find(|s| s.name().ok() == Some(name))
            .ok_or_else(|| e(format!("no non-empty executable section `{name}`"))),
        None => {
            let mut it = candidates.into_iter();
            match (it.next(), it.next()) {
                (Some(s), None) => Ok(s),
                (None, _) => Err(e("no non-empty executable section".into())),
                (Some(a), Some(b)) => Err(e(format!(
                    "several executable sections (`{}`, `{}`, ...): name the guard's",
                    a.name().unwrap_or("?"),
                    b.name().unwrap_or("?")
                ))),
            }
        }
    }
}

fn parse_bpf(bytes: &[u8]) -> Result<object::File<'_>, SourceError> {
    let e = |m: String| SourceError::Elf(m);
    let file = object::File::parse(bytes).map_err(|err| e(format!("cannot parse: {err}")))?;
    if file.architecture() != object::Architecture::Bpf {
        return Err(e(format!(
            "architecture is {:?}, not BPF",
            file.architecture()
        )));
    }
    if !file.is_little_endian() {
        return Err(e("big-endian BPF objects are not supported".into()));
    }
    Ok(file)
}

/// The guard program in an ELF object from `clang -target bpf -O2 -c`: the executable
/// section named `section`, or the only non-empty executable section, with the object's
/// read-only data. The only relocations accepted are `lddw` of an address in a `.rodata*`
/// section (constant tables, switch tables, strings): each becomes an `lddw` with source
/// [`PSEUDO_RODATA`] and the offset into [`GuardCode::rodata`]. Any other relocation (a call
/// to another function, a map, writable global data) is refused: a guard is one
/// self-contained function.
pub fn from_elf_with_rodata(bytes: &[u8], section: Option<&str>) -> Result<GuardCode, SourceError> {
    let e = |m: String| SourceError::Elf(m);
    let file = parse_bpf(bytes)?;
    let chosen = guard_section(&file, section)?;
    let name = chosen.name().unwrap_or("?").to_string();
    let data = chosen
        .data()
        .map_err(|err| e(format!("cannot read section `{name}`: {err}")))?;
    let mut code = from_raw(data)?;

    // Every .rodata* section, 8-byte aligned, in section order.
    let mut rodata = Vec::new();
    let mut base_of = HashMap::new();
    for s in file.sections() {
        if s.name().is_ok_and(|n| n.starts_with(".rodata")) && s.size() > 0 {
            let d = s
                .data()
                .map_err(|err| e(format!("cannot read `{}`: {err}", s.name().unwrap_or("?"))))?;
            rodata.resize(rodata.len().next_multiple_of(8), 0);
            base_of.insert(s.index(), rodata.len() as u64);
            rodata.extend_from_slice(d);
        }
    }
    if rodata.len() > MAX_RODATA {
        return Err(e(format!(
            "{} bytes of read-only data, limit {MAX_RODATA}",
            rodata.len()
        )));
    }
    let refuse = |why: String| {
        e(format!(
            "section `{name}` has relocations other than read-only data ({why}): a guard must be self-contained"
        ))
    };
    for (at, r) in chosen.relocations() {
        let RelocationFlags::Elf { r_type } = r.flags() else {
            return Err(refuse("not an ELF relocation".into()));
        };
        if r_type != object::elf::R_BPF_64_64 {
            return Err(refuse(format!(
                "type {r_type} at byte {at}: a call or a map?"
            )));
        }
        let at = at as usize;
        if at % 8 != 0 || at + 16 > code.len() || code[at] != rbpf::ebpf::LD_DW_IMM {
            return Err(refuse(format!("byte {at} is not an lddw")));
        }
        let RelocationTarget::Symbol(sym) = r.target() else {
            return Err(refuse(format!("byte {at}: not against a symbol")));
        };
        let sym = file
            .symbol_by_index(sym)
            .map_err(|err| refuse(format!("byte {at}: {err}")))?;
        let base = sym
            .section_index()
            .and_then(|i| base_of.get(&i))
            .ok_or_else(|| {
                refuse(format!(
                    "byte {at}: `{}` is not read-only data (writable globals or maps)",
                    sym.name().unwrap_or("?")
                ))
            })?;
        // BPF relocations are REL: the addend is the instruction's own immediate.
        let addend = u64::from(u32::from_le_bytes(code[at + 4..at + 8].try_into().unwrap()));
        let off = base + sym.address() + addend;
        if off > rodata.len() as u64 {
            return Err(refuse(format!(
                "byte {at}: offset {off} past the read-only data"
            )));
        }
        code[at + 1] = (PSEUDO_RODATA << 4) | (code[at + 1] & 0x0f);
        code[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes());
        code[at + 12..at + 16].copy_from_slice(&(off as u32).to_le_bytes());
    }
    Ok(GuardCode { code, rodata })
}

/// One entry of the line table clang writes into `.BTF.ext` (with `-g`): the instruction,
/// and the source file, line and text it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// Instruction slot in the guard's section.
    pub insn: usize,
    /// Source file name.
    pub file: String,
    /// 1-based line number.
    pub line: u32,
    /// The line's text, as clang recorded it.
    pub text: String,
}

/// The BTF line table of the guard's section (empty when the object has no `.BTF.ext`,
/// i.e. was built without `-g`). Entries are in instruction order; an instruction's line is
/// that of the last entry at or before it.
pub fn line_table(bytes: &[u8], section: Option<&str>) -> Result<Vec<SourceLine>, SourceError> {
    let e = |m: &str| SourceError::Elf(format!("BTF line info: {m}"));
    let file = parse_bpf(bytes)?;
    let chosen = guard_section(&file, section)?;
    let want = chosen.name().unwrap_or("?");
    let (Some(btf), Some(ext)) = (
        file.section_by_name(".BTF"),
        file.section_by_name(".BTF.ext"),
    ) else {
        return Ok(Vec::new());
    };
    let btf = btf.data().map_err(|_| e("unreadable .BTF"))?;
    let ext = ext.data().map_err(|_| e("unreadable .BTF.ext"))?;
    let u32_at = |d: &[u8], at: usize| -> Result<u32, SourceError> {
        d.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| e("truncated"))
    };
    // .BTF header: magic u16, version u8, flags u8, hdr_len, type_off, type_len, str_off,
    // str_len (all u32 after the first word).
    if btf.get(0..2) != Some(&[0x9f, 0xeb][..]) || ext.get(0..2) != Some(&[0x9f, 0xeb][..]) {
        return Err(e("bad magic"));
    }
    let hdr = u32_at(btf, 4)? as usize;
    let str_off = hdr + u32_at(btf, 16)? as usize;
    let str_len = u32_at(btf, 20)? as usize;
    let strings = btf
        .get(str_off..str_off + str_len)
        .ok_or_else(|| e("string section out of range"))?;
    let string = |off: u32| -> String {
        let s = strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    };
    // .BTF.ext header: magic, version, flags, hdr_len, func_info_off, func_info_len,
    // line_info_off, line_info_len; line info: rec_size, then per section
    // {name_off, count, count × {insn_off (bytes), file_name_off, line_off, line_col}}.
    let ext_hdr = u32_at(ext, 4)? as usize;
    let li_off = ext_hdr + u32_at(ext, 16)? as usize;
    let li_len = u32_at(ext, 20)? as usize;
    let li = ext
        .get(li_off..li_off + li_len)
        .ok_or_else(|| e("line info out of range"))?;
    let rec = u32_at(li, 0)? as usize;
    if rec < 16 {
        return Err(e("record too small"));
    }
    let mut at = 4;
    let mut out = Vec::new();
    while at + 8 <= li.len() {
        let sec = string(u32_at(li, at)?);
        let count = u32_at(li, at + 4)? as usize;
        at += 8;
        for k in 0..count {
            let r = at + k * rec;
            if sec == want {
                out.push(SourceLine {
                    insn: u32_at(li, r)? as usize / 8,
                    file: string(u32_at(li, r + 4)?),
                    text: string(u32_at(li, r + 8)?),
                    line: u32_at(li, r + 12)? >> 10,
                });
            }
        }
        at += count * rec;
    }
    out.sort_by_key(|l| l.insn);
    Ok(out)
}

/// The source line of instruction `insn` in a [`line_table`].
pub fn line_of(table: &[SourceLine], insn: usize) -> Option<&SourceLine> {
    table.iter().take_while(|l| l.insn <= insn).last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_comments() {
        let code = assemble(
            "  mov r0, 0      # comment\n\
             jeq r0, 0, done  ; another\n\
             mov r0, 1 // third\n\
             done: exit\n",
        )
        .unwrap();
        let expect =
            rbpf::assembler::assemble("mov r0, 0\njeq r0, 0, +1\nmov r0, 1\nexit").unwrap();
        assert_eq!(code, expect);
    }

    #[test]
    fn lddw_counts_two_slots_for_labels() {
        let code = assemble("lddw r0, 0x100000000\nja end\nmov r0, 1\nend:\nexit").unwrap();
        let expect =
            rbpf::assembler::assemble("lddw r0, 0x100000000\nja +1\nmov r0, 1\nexit").unwrap();
        assert_eq!(code, expect);
    }

    #[test]
    fn hostile_numbers_are_errors_not_panics() {
        assert!(assemble("mov r0, 99999999999999999999999\nexit").is_err());
        assert!(assemble("lddw r0, 0x11112222333344445\nexit").is_err());
        assert!(assemble("jeq r0, 0, nowhere\nexit").is_err());
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x7fELF\x02"), SourceKind::Elf);
        assert_eq!(sniff(b"exit\n"), SourceKind::Assembly);
        assert_eq!(sniff(&[0x95, 0, 0, 0, 0, 0, 0, 0]), SourceKind::Raw);
    }
}
