//! Tape-based reverse-mode autodiff.
//!
//! Every op whose inputs require grad records a [`Node`] on the output: its inputs and a
//! backward closure mapping ∂L/∂output to ∂L/∂inputs (the closure owns exactly the tensors the
//! backward needs). The nodes reachable from a loss form the tape; [`backward`] replays it in
//! a reverse topological order (among ready nodes, the one with the deepest input first, see
//! `graph`) and accumulates the gradients of the leaves. Each node is consumed as it is
//! replayed, so the tape (and every saved activation) is freed by the backward pass.
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
    /// The op only re-views its one input (same elements, another shape, layout, device or
    /// dtype): the backward schedule looks through it ([`record_view`]).
    view: bool,
    /// Creation order (process-wide), for the backward pass's schedule.
    seq: u64,
    /// Taken (and so freed) when the backward pass replays this node.
    state: Mutex<Option<(Vec<Edge>, BackwardFn)>>,
}

/// Where the gradient of one input goes. Edges hold no activations: an interior input is kept
/// only as its node (its storage is freed as soon as no op needs it), a leaf as the tensor
/// whose `grad` receives the sum.
enum Edge {
    /// The input needs no gradient.
    None,
    /// A leaf that requires grad.
    Leaf(Tensor),
    /// The output of a recorded op, and that output's shape.
    Interior(Arc<Node>, Vec<usize>),
}

impl Edge {
    fn of(t: &Tensor) -> Edge {
        match (&t.0.node, t.requires_grad()) {
            (_, false) => Edge::None,
            (None, true) => Edge::Leaf(t.clone()),
            (Some(n), true) => Edge::Interior(n.clone(), t.shape().to_vec()),
        }
    }
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
/// The incoming gradient is first moved to the output's device when it is elsewhere (the
/// backward pass seeds a loss on the CPU), so every backward closure sees its gradient on the
/// device its forward ran on. Ops that only re-view their input use [`record_view`].
pub(crate) fn record(
    op: &'static str,
    output: Tensor,
    inputs: &[&Tensor],
    backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    record_node(op, false, output, inputs, backward)
}

/// [`record`] for an op that only re-views its one input (reshape, permute, expand, narrow,
/// contiguous, cast, to_device): the backward schedule ranks it as its input.
pub(crate) fn record_view(
    op: &'static str,
    output: Tensor,
    input: &Tensor,
    backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    record_node(op, true, output, &[input], backward)
}

fn record_node(
    op: &'static str,
    view: bool,
    output: Tensor,
    inputs: &[&Tensor],
    backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output;
    }
    let device = output.device();
    let backward = move |g: &Tensor| {
        if g.device() == device {
            backward(g)
        } else {
            backward(&g.to_device(device)?)
        }
    };
    let node = Node {
        op,
        view,
        seq: NEXT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        state: Mutex::new(Some((
            inputs.iter().map(|&t| Edge::of(t)).collect(),
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

static NEXT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn key(n: &Arc<Node>) -> usize {
    Arc::as_ptr(n) as usize
}

/// The interior nodes an unreplayed node feeds from. Errors: `GraphFreed` once replayed.
fn children(n: &Arc<Node>) -> Result<Vec<Arc<Node>>> {
    match &*n.state.lock().unwrap_or_else(|e| e.into_inner()) {
        Some((edges, _)) => Ok(edges
            .iter()
            .filter_map(|e| match e {
                Edge::Interior(c, _) => Some(c.clone()),
                _ => None,
            })
            .collect()),
        None => Err(EngineError::GraphFreed),
    }
}

/// A node of the backward pass: the node, how many edges point to it, its priority.
type Scheduled = (Arc<Node>, usize, (u64, u64));

/// Nodes reachable from `root`, each with how many edges of other reachable nodes point to it
/// and its schedule priority (higher runs first among ready nodes): the creation order of the
/// latest op among its interior inputs, looking through views (so `gram(reshape(relu1_1))`
/// ranks by relu1_1's producer, not by the reshape made with the loss); ties by its own.
fn graph(root: &Arc<Node>) -> Result<HashMap<usize, Scheduled>> {
    // key → (node, consumers (one per edge), children's keys)
    let mut found: HashMap<usize, (Arc<Node>, usize, Vec<usize>)> = HashMap::new();
    let mut seen = std::collections::HashSet::from([key(root)]);
    let mut stack = vec![root.clone()];
    while let Some(n) = stack.pop() {
        let kids = children(&n)?;
        let keys = kids.iter().map(key).collect();
        found.insert(key(&n), (n, 0, keys));
        stack.extend(kids.into_iter().filter(|c| seen.insert(key(c))));
    }
    let edges: Vec<usize> = found.values().flat_map(|e| e.2.iter().copied()).collect();
    for k in edges {
        found.get_mut(&k).expect("walked").1 += 1;
    }
    // Effective creation order: a view's is its input's. Children are older (smaller seq),
    // so one pass in creation order sees them first.
    let mut order: Vec<usize> = found.keys().copied().collect();
    order.sort_by_key(|k| found[k].0.seq);
    let mut eff: HashMap<usize, u64> = HashMap::with_capacity(order.len());
    for k in &order {
        let (n, _, kids) = &found[k];
        let e = match kids.as_slice() {
            [c] if n.view => eff[c],
            _ => n.seq + 1,
        };
        eff.insert(*k, e);
    }
    Ok(found
        .into_iter()
        .map(|(k, (n, consumers, kids))| {
            let latest_input = kids.iter().map(|c| eff[c]).max().unwrap_or(0);
            let seq = n.seq;
            (k, (n, consumers, (latest_input, seq)))
        })
        .collect())
}

fn accumulate(slot: Option<Tensor>, g: Tensor) -> Result<Tensor> {
    match slot {
        None => Ok(g),
        // In place where `prev` is the tape's own (Tensor::add_grad).
        Some(prev) => prev.add_grad(&g),
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
    let _phase = crate::profile::BackwardPhase::enter();
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
    let root_node = root.0.node.as_ref().expect("checked above");
    // Kahn's algorithm: a node runs once every node it feeds has run. Among the nodes ready,
    // the one whose inputs were created last runs first, so a branch that feeds a shallow
    // activation (a style loss on relu1_1) runs just before that activation's producer, not
    // at the start of the pass: its gradient (as large as the activation) is not held while
    // the deeper layers run. Any such order gives the same gradients.
    let mut nodes = graph(root_node)?;
    let mut ready = std::collections::BinaryHeap::new();
    ready.push((nodes[&key(root_node)].2, key(root_node)));
    let mut grads: HashMap<usize, Tensor> = HashMap::new();
    grads.insert(key(root_node), seed);
    while let Some((_, k)) = ready.pop() {
        let node = nodes.remove(&k).expect("scheduled once").0;
        let (edges, f) = node
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(EngineError::GraphFreed)?;
        // Gradients flow only where one arrived; the edges are walked regardless so that the
        // nodes below still get scheduled.
        let input_grads = match grads.remove(&k) {
            Some(g) => {
                let ig = f(&g)?;
                debug_assert_eq!(ig.len(), edges.len(), "op {}", node.op);
                ig
            }
            None => {
                drop(f);
                vec![None; edges.len()]
            }
        };
        for (edge, ig) in edges.iter().zip(input_grads) {
            if let Edge::Interior(n, _) = edge {
                let ck = key(n);
                let e = nodes.get_mut(&ck).expect("reachable");
                e.1 -= 1;
                if e.1 == 0 {
                    ready.push((e.2, ck));
                }
            }
            let Some(ig) = ig else { continue };
            let shape = match edge {
                Edge::None => continue,
                Edge::Leaf(t) => t.shape(),
                Edge::Interior(_, shape) => shape,
            };
            if ig.shape() != shape {
                return Err(EngineError::ShapeMismatch {
                    op: node.op,
                    lhs: ig.shape().to_vec(),
                    rhs: shape.to_vec(),
                    detail: "internal: gradient shape differs from its input's".into(),
                });
            }
            match edge {
                Edge::Leaf(t) => {
                    let g = accumulate(t.grad(), ig)?;
                    t.set_grad(g);
                }
                Edge::Interior(n, _) => {
                    let k = key(n);
                    let g = accumulate(grads.remove(&k), ig)?;
                    grads.insert(k, g);
                }
                Edge::None => {}
            }
        }
    }
    Ok(())
}
