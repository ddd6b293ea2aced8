//! Tape-based reverse-mode autodiff.
//!
//! Every op whose inputs require grad records a [`Node`] on the output: its inputs and a
//! backward closure mapping ∂L/∂output to ∂L/∂inputs (the closure owns exactly the tensors the
//! backward needs). The nodes reachable from a loss form the tape; [`backward`] replays it in
//! reverse topological order and accumulates the gradients of the leaves. Each node is consumed
//! as it is replayed, so the tape (and every saved activation) is freed by the backward pass.
//! Inside [`no_grad`] nothing is recorded (frozen weights, style targets, optimiser updates).

use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{EngineError, Result};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Maps ∂L/∂output to ∂L/∂input for each input (None where an input needs no gradient).
pub(crate) type BackwardFn = Box<dyn FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// One recorded op on the tape.
pub(crate) struct Node {
    pub(crate) op: &'static str,
    /// Taken (and so freed) when the backward pass replays this node.
    state: Mutex<Option<(Vec<Tensor>, BackwardFn)>>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record themselves for autodiff.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped (see [`no_grad`]).
pub struct GradModeGuard(bool);

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

/// Disable recording on this thread until the guard is dropped.
pub fn no_grad_guard() -> GradModeGuard {
    GradModeGuard(GRAD_ENABLED.with(|g| g.replace(false)))
}

/// Run `f` with recording disabled on this thread: nothing inside is put on the tape.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = no_grad_guard();
    f()
}

/// Record `output` as produced by `op` from `inputs`: when grad mode is on and some input
/// requires grad, the returned tensor carries a node with `backward`; otherwise `output` as is.
pub(crate) fn record(
    op: &'static str,
    output: Tensor,
    inputs: &[&Tensor],
    backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output;
    }
    let node = Node {
        op,
        state: Mutex::new(Some((
            inputs.iter().map(|&t| t.clone()).collect(),
            Box::new(backward),
        ))),
    };
    let inner = &output.0;
    Tensor::from_parts(
        inner.storage.clone(),
        inner.shape.clone(),
        inner.strides.clone(),
        inner.offset,
        Some(Arc::new(node)),
    )
}

fn key(t: &Tensor) -> usize {
    Arc::as_ptr(&t.0) as usize
}

fn inputs_of(t: &Tensor) -> Result<Vec<Tensor>> {
    match &t.0.node {
        None => Ok(vec![]),
        Some(node) => match &*node.state.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((inputs, _)) => Ok(inputs.clone()),
            None => Err(EngineError::GraphFreed),
        },
    }
}

/// Tensors with a node reachable from `root`, in post-order (inputs before outputs).
fn topo_order(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Iterative DFS: (tensor, inputs expanded?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if t.0.node.is_none() || !seen.insert(key(&t)) {
            continue;
        }
        let inputs = inputs_of(&t)?;
        stack.push((t, true));
        for i in inputs.into_iter().filter(|i| i.requires_grad()) {
            stack.push((i, false));
        }
    }
    Ok(order)
}

fn accumulate(slot: Option<Tensor>, g: Tensor) -> Result<Tensor> {
    match slot {
        None => Ok(g),
        Some(prev) => prev.add(&g),
    }
}

/// ∂root/∂leaf for every leaf requiring grad that `root` depends on, added to the leaves'
/// `grad()`. `root` must have one element. Frees the tape: a second call on the same graph
/// returns `GraphFreed`.
pub fn backward(root: &Tensor) -> Result<()> {
    if root.numel() != 1 {
        return Err(EngineError::NotScalar {
            shape: root.shape().to_vec(),
        });
    }
    let _guard = no_grad_guard();
    let seed = Tensor::from_storage(
        match root.dtype() {
            crate::DType::F64 => Storage::F64(vec![1.0]),
            _ => Storage::F32(vec![1.0]),
        },
        root.shape(),
    )
    .to_device(root.device())?;
    if !root.requires_grad() {
        return Ok(());
    }
    if root.0.node.is_none() {
        let g = accumulate(root.grad(), seed)?;
        root.set_grad(g);
        return Ok(());
    }
    let order = topo_order(root)?;
    let mut grads: HashMap<usize, Tensor> = HashMap::new();
    grads.insert(key(root), seed);
    for t in order.iter().rev() {
        let Some(g) = grads.remove(&key(t)) else {
            continue;
        };
        let node =
            t.0.node
                .as_ref()
                .expect("topo_order yields only recorded tensors");
        let (inputs, f) = node
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(EngineError::GraphFreed)?;
        let input_grads = f(&g)?;
        debug_assert_eq!(input_grads.len(), inputs.len(), "op {}", node.op);
        for (input, ig) in inputs.iter().zip(input_grads) {
            let Some(ig) = ig else { continue };
            if !input.requires_grad() {
                continue;
            }
            if ig.shape() != input.shape() {
                return Err(EngineError::ShapeMismatch {
                    op: node.op,
                    lhs: ig.shape().to_vec(),
                    rhs: input.shape().to_vec(),
                    detail: "internal: gradient shape differs from its input's".into(),
                });
            }
            if input.0.node.is_none() {
                let g = accumulate(input.grad(), ig)?;
                input.set_grad(g);
            } else {
                let k = key(input);
                let g = accumulate(grads.remove(&k), ig)?;
                grads.insert(k, g);
            }
        }
    }
    Ok(())
}
