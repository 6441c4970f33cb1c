//! Where guard bytecode comes from: rbpf assembly text (with labels and comments), raw
//! bytecode, or an ELF object built by `clang -target bpf -O2 -c` from restricted C.

use std::{collections::HashMap, panic};

use object::{Object, ObjectSection, SectionFlags, SectionKind};

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

/// The guard program in an ELF object from `clang -target bpf -O2 -c`: the executable
/// section named `section`, or the only non-empty executable section. Objects with
/// relocations against the program (calls to other functions, maps, global data) are refused:
/// a guard is one self-contained function.
pub fn from_elf(bytes: &[u8], section: Option<&str>) -> Result<Vec<u8>, SourceError> {
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
    let is_exec = |s: &object::Section<'_, '_>| {
        s.kind() == SectionKind::Text
            || matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0)
    };
    let candidates: Vec<_> = file
        .sections()
        .filter(|s| is_exec(s) && s.size() > 0)
        .collect();
    let chosen = match section {
        Some(name) => candidates
            .into_iter()
            .find(|s| s.name().ok() == Some(name))
            .ok_or_else(|| e(format!("no non-empty executable section `{name}`")))?,
        None => {
            let mut it = candidates.into_iter();
            match (it.next(), it.next()) {
                (Some(s), None) => s,
                (None, _) => return Err(e("no non-empty executable section".into())),
                (Some(a), Some(b)) => {
                    return Err(e(format!(
                        "several executable sections (`{}`, `{}`, ...): name the guard's",
                        a.name().unwrap_or("?"),
                        b.name().unwrap_or("?")
                    )))
                }
            }
        }
    };
    let name = chosen.name().unwrap_or("?").to_string();
    if chosen.relocations().next().is_some() {
        return Err(e(format!(
            "section `{name}` has relocations (calls, maps or global data): a guard must be self-contained"
        )));
    }
    let data = chosen
        .data()
        .map_err(|err| e(format!("cannot read section `{name}`: {err}")))?;
    from_raw(data)
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
