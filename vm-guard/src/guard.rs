//! Guards as producer-side validators: a chain of verified programs, first rejection wins.

use std::{borrow::Cow, collections::BTreeMap, fmt};

use sbpf_ring::{
    abi::Sqe,
    validate::{Limits, Rejection, Validator},
};

use crate::{
    builtin::{self, code},
    context::{ContextBuf, ALL_OPCODES},
    source::{self, SourceError},
    stats::{GuardStats, StatsSlot},
    verifier::Policy,
    vm::{Engine, Helper, LoadError, Program},
};

/// Why a guard stage could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The source did not yield bytecode.
    #[error("stage `{stage}`: no bytecode in the source")]
    Source {
        /// Stage name.
        stage: String,
        /// What went wrong.
        source: SourceError,
    },
    /// The bytecode did not verify or load.
    #[error("stage `{stage}` did not load")]
    Load {
        /// Stage name.
        stage: String,
        /// What went wrong.
        source: LoadError,
    },
}

/// One guard program in a chain, with the `allowed_opcodes` word its context carries.
#[derive(Clone, Debug)]
pub struct Stage {
    name: Cow<'static, str>,
    program: Program,
    allowed_opcodes: u64,
}

impl Stage {
    /// A stage from bytecode, verified under the default [`Policy`].
    pub fn from_bytecode(
        name: impl Into<Cow<'static, str>>,
        bytecode: &[u8],
        engine: Engine,
    ) -> Result<Stage, GuardError> {
        Self::with_policy(name, bytecode, &Policy::default(), &[], engine)
    }

    /// A stage from bytecode with an explicit policy and helpers.
    pub fn with_policy(
        name: impl Into<Cow<'static, str>>,
        bytecode: &[u8],
        policy: &Policy,
        helpers: &[Helper],
        engine: Engine,
    ) -> Result<Stage, GuardError> {
        Self::with_rodata(name, bytecode, &[], policy, helpers, engine)
    }

    /// A stage from bytecode and its read-only data (see [`Program::load_with_rodata`]).
    pub fn with_rodata(
        name: impl Into<Cow<'static, str>>,
        bytecode: &[u8],
        rodata: &[u8],
        policy: &Policy,
        helpers: &[Helper],
        engine: Engine,
    ) -> Result<Stage, GuardError> {
        let name = name.into();
        let program = Program::load_with_rodata(bytecode, rodata, policy, helpers, engine)
            .map_err(|source| GuardError::Load {
                stage: name.to_string(),
                source,
            })?;
        Ok(Stage {
            name,
            program,
            allowed_opcodes: ALL_OPCODES,
        })
    }

    /// A stage from rbpf assembly text.
    pub fn from_asm(
        name: impl Into<Cow<'static, str>>,
        text: &str,
        engine: Engine,
    ) -> Result<Stage, GuardError> {
        let name = name.into();
        let code = source::assemble(text).map_err(|source| GuardError::Source {
            stage: name.to_string(),
            source,
        })?;
        Self::from_bytecode(name, &code, engine)
    }

    /// A stage from any source file's bytes (ELF with its read-only data, assembly or raw,
    /// by content).
    pub fn from_file_bytes(
        name: impl Into<Cow<'static, str>>,
        bytes: &[u8],
        engine: Engine,
    ) -> Result<Stage, GuardError> {
        let name = name.into();
        let code = source::load_guard(bytes).map_err(|source| GuardError::Source {
            stage: name.to_string(),
            source,
        })?;
        Self::with_rodata(
            name,
            &code.code,
            &code.rodata,
            &Policy::default(),
            &[],
            engine,
        )
    }

    fn builtin(name: &'static str, text: &str, engine: Engine) -> Stage {
        Self::from_asm(name, text, engine)
            .unwrap_or_else(|e| panic!("built-in guard `{name}` must verify (tested): {e}"))
    }

    /// The built-in bounds guard ([`builtin::bounds`]).
    pub fn bounds(engine: Engine) -> Stage {
        Self::builtin("bounds", &builtin::bounds(), engine)
    }

    /// The built-in opcode allow-list: opcodes whose bit is set in `mask` pass.
    pub fn opcode_allowlist(mask: u64, engine: Engine) -> Stage {
        Self::builtin("opcode-allowlist", &builtin::opcode_allowlist(), engine)
            .allowed_opcodes(mask)
    }

    /// The built-in read-only guard: NOP, READ and LOAD64 only.
    pub fn read_only(engine: Engine) -> Stage {
        Self::builtin("read-only", &builtin::read_only(), engine)
    }

    /// The built-in per-object allow-list.
    pub fn object_allowlist(ids: &[u32], engine: Engine) -> Stage {
        Self::builtin("object-allowlist", &builtin::object_allowlist(ids), engine)
    }

    /// Sets the `allowed_opcodes` word this stage's context carries (default: all opcodes).
    pub fn allowed_opcodes(mut self, mask: u64) -> Stage {
        self.allowed_opcodes = mask;
        self
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The loaded program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The `allowed_opcodes` word of this stage's context.
    pub fn opcode_mask(&self) -> u64 {
        self.allowed_opcodes
    }
}

/// Accept and reject counts of one guard (one producer handle's copy), per validation: an
/// entry that was validated and then handed back (only a prefix of its batch fit the ring,
/// or other producers took the room first) and is submitted again is counted again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardCounters {
    pub(crate) accepted: u64,
    by_code: BTreeMap<u64, u64>,
    by_stage: Vec<u64>,
}

impl GuardCounters {
    /// Entries accepted by every stage.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Entries rejected with `code`.
    pub fn rejected(&self, code: u64) -> u64 {
        self.by_code.get(&code).copied().unwrap_or(0)
    }

    /// Entries rejected, all codes.
    pub fn rejected_total(&self) -> u64 {
        self.by_code.values().sum()
    }

    /// `(code, count)` for every code seen, ascending.
    pub fn by_code(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_code.iter().map(|(c, n)| (*c, *n))
    }

    /// Rejections per stage, in chain order.
    pub fn by_stage(&self) -> &[u64] {
        &self.by_stage
    }

    pub(crate) fn for_stages(stages: usize) -> Self {
        GuardCounters {
            by_stage: vec![0; stages],
            ..GuardCounters::default()
        }
    }

    pub(crate) fn count_rejection(&mut self, stage: usize, code: u64) {
        *self.by_code.entry(code).or_insert(0) += 1;
        if let Some(n) = self.by_stage.get_mut(stage) {
            *n += 1;
        }
    }

    pub(crate) fn add(&mut self, other: &GuardCounters) {
        self.accepted += other.accepted;
        for (code, n) in other.by_code() {
            *self.by_code.entry(code).or_insert(0) += n;
        }
        if self.by_stage.len() < other.by_stage.len() {
            self.by_stage.resize(other.by_stage.len(), 0);
        }
        for (total, n) in self.by_stage.iter_mut().zip(&other.by_stage) {
            *total += n;
        }
    }
}

/// Where a chain stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every stage returned 0.
    Accept,
    /// Stage `stage` returned the non-zero `code` (or failed to run: [`code::GUARD_FAULT`]).
    Reject {
        /// Index of the stage in the chain.
        stage: usize,
        /// Its reason code.
        code: u64,
    },
}

/// A chain of guard stages run on each descriptor in order; the first non-zero return
/// rejects. Implements [`Validator`], so a producer handle can own one.
///
/// Each handle owns its copy: a clone ([`Validator::clone_box`] too) rebuilds every stage's
/// VM over its own copy of the bytecode (and JIT-compiles it again) and starts with fresh
/// [`counters`](Guard::counters); [`stats`](Guard::stats) adds up every copy.
pub struct Guard {
    stages: Vec<Stage>,
    ctx: ContextBuf,
    /// The limits `ctx` holds, so that only the descriptor is rewritten while they do not
    /// change (they rarely do: objects attach and detach, the arena is fixed).
    ctx_limits: Option<Limits>,
    counters: GuardCounters,
    stats: StatsSlot,
    name: String,
}

impl Clone for Guard {
    fn clone(&self) -> Self {
        Guard {
            stages: self.stages.clone(),
            ctx: ContextBuf::default(),
            ctx_limits: None,
            counters: GuardCounters::for_stages(self.stages.len()),
            stats: self.stats.another(),
            name: self.name.clone(),
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("name", &self.name)
            .field("stages", &self.stages)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A chain of `stages`.
    pub fn new(stages: impl IntoIterator<Item = Stage>) -> Guard {
        let stages: Vec<Stage> = stages.into_iter().collect();
        let name = format!(
            "guard[{}]",
            stages
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(",")
        );
        Guard {
            counters: GuardCounters::for_stages(stages.len()),
            stats: StatsSlot::new_board(stages.len()),
            stages,
            ctx: ContextBuf::default(),
            ctx_limits: None,
            name,
        }
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// This copy's counters.
    pub fn counters(&self) -> &GuardCounters {
        &self.counters
    }

    /// The totals of this guard and of every copy made from it, live or dropped. Take it
    /// before handing the guard to a producer handle, which keeps the guard out of reach.
    pub fn stats(&self) -> GuardStats {
        self.stats.stats()
    }

    /// Runs the chain on `sqe` without touching the counters.
    #[inline]
    pub fn evaluate(&mut self, sqe: &Sqe, limits: &Limits) -> Verdict {
        if self.ctx_limits.as_ref() == Some(limits) {
            self.ctx.fill_sqe(sqe, limits);
        } else {
            self.ctx.fill(sqe, limits);
            self.ctx_limits = Some(*limits);
        }
        for (i, stage) in self.stages.iter().enumerate() {
            self.ctx.set_allowed_opcodes(stage.allowed_opcodes);
            let code = stage
                .program
                .run(&mut self.ctx.0)
                .unwrap_or(code::GUARD_FAULT);
            if code != 0 {
                return Verdict::Reject { stage: i, code };
            }
        }
        Verdict::Accept
    }

    /// The rejection a producer sees for a stage's code: the code, and a reason naming the
    /// stage.
    pub fn rejection(&self, stage: usize, code: u64) -> Rejection {
        let name = self.stages.get(stage).map_or("?", |s| s.name());
        let what = code::describe(code).map_or_else(|| format!("returned {code}"), str::to_string);
        Rejection {
            code,
            reason: Cow::Owned(format!("guard stage `{name}`: {what}")),
        }
    }
}

impl Validator for Guard {
    #[inline]
    fn validate(&mut self, sqe: &Sqe, limits: &Limits) -> Result<(), Rejection> {
        match self.evaluate(sqe, limits) {
            Verdict::Accept => {
                self.counters.accepted += 1;
                self.stats.accept();
                Ok(())
            }
            Verdict::Reject { stage, code } => {
                self.counters.count_rejection(stage, code);
                self.stats.reject(stage, code);
                Err(self.rejection(stage, code))
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(self.clone())
    }

    fn name(&self) -> &str {
        &self.name
    }
}
