//! The jobs: an in-memory map mirrored on disk (one directory per job with `job.json`), the queue
//! the worker takes from, and a broadcast channel per job for the server-sent events.
//!
//! Every change happens under one mutex and its event is sent under it too, so a subscriber that
//! takes a snapshot and subscribes under the lock misses nothing and sees nothing twice.

use super::record::{is_id, now, JobRecord, ProgressInfo, Status};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// One server-sent event: its name and JSON data. `last` marks the final event of a stream.
#[derive(Debug)]
pub struct Ev {
    pub name: &'static str,
    pub data: String,
    pub last: bool,
}

/// A subscriber's end of a job's event channel.
pub type EventRx = broadcast::Receiver<Arc<Ev>>;

struct Entry {
    rec: JobRecord,
    tx: broadcast::Sender<Arc<Ev>>,
    cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Entry>,
    queue: VecDeque<String>,
}

/// The job store. Cheap to share (`Arc`).
pub struct Store {
    dir: PathBuf,
    /// `DIR/.lock`, held (an exclusive advisory lock) while this store is open: a second server
    /// on the same jobs directory would run the same queued jobs and mark this one's running
    /// job failed.
    _lock: std::fs::File,
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Serialises job.json writes (they share a temporary-file name per job).
    persist_lock: Mutex<()>,
}

/// What the worker gets when it takes a job.
pub struct Taken {
    pub rec: JobRecord,
    pub cancel: Arc<AtomicBool>,
}

/// Why a cancel or delete was refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    Unknown,
    AlreadyFinished(Status),
}

fn ev(name: &'static str, data: &Value, last: bool) -> Arc<Ev> {
    Arc::new(Ev {
        name,
        data: data.to_string(),
        last,
    })
}

impl Inner {
    fn position(&self, id: &str) -> usize {
        self.queue.iter().position(|q| q == id).map_or(0, |p| p + 1)
    }

    fn view(&self, e: &Entry, with_history: bool) -> Value {
        e.rec.view(self.position(&e.rec.id), with_history)
    }

    fn send(&self, id: &str, name: &'static str, data: &Value, last: bool) {
        if let Some(e) = self.jobs.get(id) {
            let _ = e.tx.send(ev(name, data, last));
        }
    }

    fn send_status(&self, id: &str) {
        if let Some(e) = self.jobs.get(id) {
            let v = self.view(e, false);
            let _ = e.tx.send(ev("status", &v, false));
        }
    }

    /// Tell every queued job its (new) position.
    fn send_positions(&self) {
        for id in &self.queue {
            self.send_status(id);
        }
    }
}

impl Store {
    /// Open (creating) the jobs directory and load the jobs found there. A job that was running
    /// when the server stopped is marked failed (its last preview is kept); queued jobs are
    /// queued again, oldest first.
    pub fn open(dir: &Path) -> Result<Arc<Store>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = dir.join(".lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            anyhow::bail!(
                "jobs directory {} is in use by another nst-cli serve ({e}); stop it or give \
                 another --jobs-dir",
                dir.display()
            );
        }
        let mut recs = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_id(&name) {
                continue;
            }
            remove_stale_temporaries(&entry.path());
            let path = entry.path().join("job.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match serde_json::from_str::<JobRecord>(&text) {
                Ok(rec) if rec.id == name => recs.push(rec),
                Ok(_) => note!(
                    "warning: {}: id does not match its directory; skipped",
                    path.display()
                ),
                Err(e) => note!("warning: {}: {e}; skipped", path.display()),
            }
        }
        recs.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.id.cmp(&b.id)));
        let store = Arc::new(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
            inner: Mutex::new(Inner::default()),
            wake: Condvar::new(),
            persist_lock: Mutex::new(()),
        });
        let mut fixed = Vec::new();
        {
            let mut inner = store.lock();
            for mut rec in recs {
                if rec.status == Status::Running {
                    rec.status = Status::Failed;
                    rec.finished = Some(now());
                    rec.error = Some(
                        "the server stopped while this job was running; its last preview is kept"
                            .into(),
                    );
                    fixed.push(rec.id.clone());
                }
                if rec.status == Status::Queued {
                    inner.queue.push_back(rec.id.clone());
                }
                let (tx, _) = broadcast::channel(256);
                inner.jobs.insert(
                    rec.id.clone(),
                    Entry {
                        rec,
                        tx,
                        cancel: Arc::new(AtomicBool::new(false)),
                    },
                );
            }
        }
        for id in fixed {
            store.persist(&id);
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The jobs directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of job `id` (which must be a valid id).
    pub fn job_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_id(id));
        self.dir.join(id)
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Write job `id`'s job.json atomically (errors are reported, not returned: the job goes on).
    pub fn persist(&self, id: &str) {
        let _guard = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let text = {
            let inner = self.lock();
            match inner.jobs.get(id) {
                Some(e) => serde_json::to_vec(&e.rec),
                None => return,
            }
        };
        let path = self.job_dir(id).join("job.json");
        let result = text
            .map_err(|e| e.to_string())
            .and_then(|t| nst::image::write_atomic(&path, &t).map_err(|e| e.to_string()));
        if let Err(e) = result {
            note!("warning: writing {}: {e}", path.display());
        }
    }

    /// Add a queued job (its directory and inputs already written); returns its view.
    pub fn insert(&self, rec: JobRecord) -> Value {
        let id = rec.id.clone();
        let view = {
            let mut inner = self.lock();
            let (tx, _) = broadcast::channel(256);
            inner.queue.push_back(id.clone());
            inner.jobs.insert(
                id.clone(),
                Entry {
                    rec,
                    tx,
                    cancel: Arc::new(AtomicBool::new(false)),
                },
            );
            inner.view(&inner.jobs[&id], false)
        };
        self.persist(&id);
        self.wake.notify_all();
        view
    }

    /// Whether `id` is a known job.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().jobs.contains_key(id)
    }

    /// A copy of job `id`'s record.
    pub fn record(&self, id: &str) -> Option<JobRecord> {
        self.lock().jobs.get(id).map(|e| e.rec.clone())
    }

    /// Job `id`'s view (with the loss history).
    pub fn view(&self, id: &str) -> Option<Value> {
        let inner = self.lock();
        inner.jobs.get(id).map(|e| inner.view(e, true))
    }

    /// All jobs, newest first, without their histories.
    pub fn list(&self) -> Vec<Value> {
        let inner = self.lock();
        let mut entries: Vec<&Entry> = inner.jobs.values().collect();
        entries.sort_by(|a, b| {
            b.rec
                .created
                .total_cmp(&a.rec.created)
                .then(b.rec.id.cmp(&a.rec.id))
        });
        entries.iter().map(|e| inner.view(e, false)).collect()
    }

    /// Subscribe to job `id`'s events: the events to send first (a `status` snapshot with the
    /// history, and `done` if the job is over) and the receiver for what follows.
    pub fn subscribe(&self, id: &str) -> Option<(Vec<Arc<Ev>>, EventRx)> {
        let inner = self.lock();
        let e = inner.jobs.get(id)?;
        let v = inner.view(e, true);
        let mut first = vec![ev("status", &v, false)];
        if e.rec.status.is_terminal() {
            first.push(ev("done", &inner.view(e, false), true));
        }
        Some((first, e.tx.subscribe()))
    }

    /// A fresh `status` snapshot (with history) for a subscriber that fell behind.
    pub fn snapshot(&self, id: &str) -> Option<Arc<Ev>> {
        let inner = self.lock();
        inner
            .jobs
            .get(id)
            .map(|e| ev("status", &inner.view(e, true), false))
    }

    /// Stop job `id`: a queued job becomes cancelled at once; a running one stops after its
    /// current iteration and keeps the image reached as its result.
    pub fn cancel(&self, id: &str) -> Result<Value, Refused> {
        {
            let mut inner = self.lock();
            let e = inner.jobs.get_mut(id).ok_or(Refused::Unknown)?;
            match e.rec.status {
                Status::Running => {
                    e.cancel.store(true, Ordering::SeqCst);
                    return Ok(inner.view(&inner.jobs[id], false));
                }
                Status::Queued => {
                    e.rec.status = Status::Cancelled;
                    e.rec.finished = Some(now());
                    inner.queue.retain(|q| q != id);
                }
                s => return Err(Refused::AlreadyFinished(s)),
            }
        }
        self.persist(id);
        let inner = self.lock();
        let e = inner.jobs.get(id).ok_or(Refused::Unknown)?;
        let v = inner.view(e, false);
        inner.send(id, "done", &v, true);
        inner.send_positions();
        Ok(v)
    }

    /// Forget job `id` (cancelling it if it runs). Returns whether its directory can be removed
    /// now (false while it runs: the worker removes it when the run stops).
    pub fn delete(&self, id: &str) -> Result<bool, Refused> {
        let _guard = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut inner = self.lock();
        let running = match inner.jobs.get(id) {
            None => return Err(Refused::Unknown),
            Some(e) => e.rec.status == Status::Running,
        };
        inner.send(id, "deleted", &json!({"id": id}), true);
        let e = inner.jobs.remove(id).expect("checked");
        if running {
            e.cancel.store(true, Ordering::SeqCst);
        }
        let was_queued = inner.queue.iter().any(|q| q == id);
        inner.queue.retain(|q| q != id);
        if was_queued {
            inner.send_positions();
        }
        Ok(!running)
    }

    /// Block until a job is queued, mark it running and hand it to the worker.
    pub fn take(&self) -> Taken {
        let mut inner = self.lock();
        let id = loop {
            if let Some(id) = inner.queue.pop_front() {
                break id;
            }
            inner = self.wake.wait(inner).unwrap_or_else(|e| e.into_inner());
        };
        let e = inner.jobs.get_mut(&id).expect("queued jobs are in the map");
        e.rec.status = Status::Running;
        e.rec.started = Some(now());
        let taken = Taken {
            rec: e.rec.clone(),
            cancel: e.cancel.clone(),
        };
        drop(inner);
        self.persist(&id);
        let inner = self.lock();
        inner.send_status(&id);
        inner.send_positions();
        taken
    }

    /// Record an iteration and tell the watchers.
    pub fn progress(&self, id: &str, p: ProgressInfo) {
        let mut inner = self.lock();
        let Some(e) = inner.jobs.get_mut(id) else {
            return;
        };
        e.rec.history.push((p.step, p.loss));
        let data = serde_json::to_value(&p).unwrap_or_default();
        e.rec.progress = Some(p);
        inner.send(id, "progress", &data, false);
    }

    /// A new preview was written (and kept as a snapshot if `snapshot`).
    pub fn preview(&self, id: &str, step: usize, snapshot: bool) {
        {
            let mut inner = self.lock();
            let Some(e) = inner.jobs.get_mut(id) else {
                return;
            };
            e.rec.preview_step = step;
            if snapshot {
                e.rec.snapshots.push(step);
            }
        }
        self.persist(id);
        let url = format!("/api/jobs/{id}/preview.png?step={step}");
        self.lock()
            .send(id, "preview", &json!({"step": step, "url": url}), false);
    }

    /// The worker is done with job `id`: record the outcome (on disk first, so that a client
    /// told `done` finds it after a restart), tell the watchers, and remove the directory if the
    /// job was deleted meanwhile.
    pub fn finish(
        &self,
        id: &str,
        status: Status,
        error: Option<String>,
        result: Option<(usize, usize)>,
    ) {
        let known = {
            let mut inner = self.lock();
            match inner.jobs.get_mut(id) {
                Some(e) => {
                    e.rec.status = status;
                    e.rec.finished = Some(now());
                    e.rec.error = error;
                    e.rec.result_size = result;
                    true
                }
                None => false,
            }
        };
        if !known {
            remove_dir(&self.job_dir(id));
            return;
        }
        self.persist(id);
        let inner = self.lock();
        if let Some(e) = inner.jobs.get(id) {
            let v = inner.view(e, false);
            inner.send(id, "done", &v, true);
        }
    }
}

/// Remove the temporary files `nst::image::write_atomic` leaves when the process is killed
/// mid-write (`.NAME.tmp-PID-N`).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Remove a job directory, reporting (not returning) failures.
pub fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            note!("warning: removing {}: {e}", dir.display());
        }
    }
}
