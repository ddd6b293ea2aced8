//! Time per op, for a profile without an external profiler (`nst-cli bench --profile`, on
//! machines without `perf`).
//!
//! Every op reaches its backend through one call (`backend_of`), which opens a [`Span`]: while
//! collection is on ([`start`] … [`finish`], on the calling thread), the span's wall time is
//! added to the row of (op name, [`Phase`], the op's input: the shape of its first tensor, for
//! a convolution also the weight's). Only the outermost span counts, so an op that runs other
//! ops inside is timed once, as itself. Kernels run their rayon workers inside the span, so
//! the time is the op's wall time on all threads. On a GPU
//! the times are those of launching the work, not of running it (the launches are
//! asynchronous); [`start`]'s callers time CPU runs only.
//!
//! The state is per thread (as grad mode is): ops run on the thread that calls them, and the
//! backward pass replays the tape on the thread that calls `backward`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which pass an op ran in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Called by the program (the forward pass, losses, optimiser steps).
    Forward,
    /// Called by a backward closure during [`crate::autograd::backward`].
    Backward,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
        })
    }
}

/// One row of a profile: every call of `op` in `phase` on inputs described as `input`.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// The op's public name (`conv2d`, `max_pool2d`, `mul`, …).
    pub op: &'static str,
    /// Forward (called by the program) or backward (called by the tape).
    pub phase: Phase,
    /// The shape of the op's first tensor (its input; in the backward, the incoming gradient),
    /// e.g. `1×64×192×256`; for a convolution followed by ` * ` and the weight's (OIHW).
    pub input: String,
    /// Number of calls.
    pub calls: u64,
    /// Wall time summed over the calls, in seconds.
    pub seconds: f64,
}

type Key = (&'static str, Phase, String);

struct State {
    /// Spans open on this thread (only the outermost records).
    depth: usize,
    table: HashMap<Key, (u64, Duration)>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    static PHASE: Cell<Phase> = const { Cell::new(Phase::Forward) };
}

/// Start collecting on this thread, discarding anything collected before.
pub fn start() {
    STATE.with(|s| {
        *s.borrow_mut() = Some(State {
            depth: 0,
            table: HashMap::new(),
        })
    });
}

/// Stop collecting on this thread and return the rows, the most time first (empty if
/// [`start`] was not called).
pub fn finish() -> Vec<OpTime> {
    let state = STATE.with(|s| s.borrow_mut().take());
    let mut rows: Vec<OpTime> = state
        .map(|st| st.table)
        .unwrap_or_default()
        .into_iter()
        .map(|((op, phase, input), (calls, d))| OpTime {
            op,
            phase,
            input,
            calls,
            seconds: d.as_secs_f64(),
        })
        .collect();
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.op.cmp(b.op)));
    rows
}

/// Times one op from creation to drop (see the module docs); inert unless collection is on
/// and no other span is open on this thread.
pub(crate) struct Span {
    /// When the span opened, if collection was on (the span then counts in `depth`).
    start: Option<Instant>,
    /// The row to add to: the outermost span only.
    key: Option<Key>,
}

impl Span {
    /// `input` describes the op's input (see [`OpTime::input`]); it runs only while collecting.
    pub(crate) fn open(op: &'static str, input: impl FnOnce() -> String) -> Span {
        let (counted, key) = STATE.with(|s| match s.borrow_mut().as_mut() {
            None => (false, None),
            Some(st) => {
                st.depth += 1;
                let outermost = st.depth == 1;
                (
                    true,
                    outermost.then(|| (op, PHASE.with(Cell::get), input())),
                )
            }
        });
        Span {
            start: counted.then(Instant::now),
            key,
        }
    }
}

/// `1×64×192×256`: a shape as [`OpTime::input`] writes it.
pub(crate) fn dims(shape: &[usize]) -> String {
    let d: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    d.join("×")
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(start) = self.start else { return };
        let elapsed = start.elapsed();
        STATE.with(|s| {
            // Collection may have been finished (or restarted) while the span was open.
            let mut s = s.borrow_mut();
            let Some(st) = s.as_mut() else { return };
            st.depth = st.depth.saturating_sub(1);
            if let Some(key) = self.key.take() {
                let e = st.table.entry(key).or_default();
                e.0 += 1;
                e.1 += elapsed;
            }
        });
    }
}

/// Marks the ops called until it is dropped as [`Phase::Backward`].
pub(crate) struct BackwardPhase(Phase);

impl BackwardPhase {
    pub(crate) fn enter() -> BackwardPhase {
        BackwardPhase(PHASE.with(|p| p.replace(Phase::Backward)))
    }
}

impl Drop for BackwardPhase {
    fn drop(&mut self) {
        PHASE.with(|p| p.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outermost_span_counts_and_phases_are_kept_apart() {
        start();
        {
            let _outer = Span::open("outer", || "2×3".into());
            let _inner = Span::open("inner", || "4".into());
        }
        {
            let _b = BackwardPhase::enter();
            let _s = Span::open("outer", || "2×3".into());
        }
        let _s = Span::open("outer", || "2×3".into());
        drop(_s);
        let rows = finish();
        let find = |op: &str, phase| rows.iter().find(|r| r.op == op && r.phase == phase);
        assert!(find("inner", Phase::Forward).is_none(), "{rows:?}");
        assert_eq!(find("outer", Phase::Forward).map(|r| r.calls), Some(2));
        assert_eq!(find("outer", Phase::Backward).map(|r| r.calls), Some(1));
        assert_eq!(rows.len(), 2);
        // Off again: spans record nothing, and finish without start is empty.
        drop(Span::open("outer", || unreachable!("not collecting")));
        assert!(finish().is_empty());
    }
}
