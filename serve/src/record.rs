//! What a job is: its record (kept as `job.json` in the job's directory, written atomically) and
//! the JSON views the API returns.

use super::params::Params;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for the device.
    Queued,
    /// Being optimised.
    Running,
    /// Finished; `result.png` holds the output.
    Done,
    /// Stopped on request; `result.png` holds the image at that point if it had started.
    Cancelled,
    /// Stopped by an error (see `error`).
    Failed,
}

impl Status {
    /// Done, cancelled or failed: nothing more will happen to the job.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Done | Status::Cancelled | Status::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }
}

/// One input image: from the built-in gallery (`source` "gallery", `name` its id) or uploaded
/// (`source` "upload", `name` the client's file name, for display only; the bytes live in the
/// job directory under `file`, a name the server chose).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputImage {
    pub source: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub width: u32,
    pub height: u32,
}

/// The latest iteration's numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressInfo {
    /// Iterations done over all scales, from 1.
    pub step: usize,
    /// Iterations in the whole job (iterations × scales).
    pub total_steps: usize,
    /// Scale index from 0, and the number of scales.
    pub scale: usize,
    pub scales: usize,
    /// Image size at this scale, px.
    pub width: usize,
    pub height: usize,
    /// Total loss and its terms (unweighted by the blend, as `nst` reports them).
    pub loss: f64,
    pub terms: BTreeMap<String, f64>,
    /// Objective evaluations in this scale.
    pub evaluations: usize,
    pub elapsed_seconds: f64,
    /// Estimated seconds left (by pixels × iterations still to do).
    pub eta_seconds: Option<f64>,
}

/// Everything the server keeps about a job; serialised as `job.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub status: Status,
    /// Unix seconds.
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub params: Params,
    pub content: InputImage,
    pub styles: Vec<InputImage>,
    pub progress: Option<ProgressInfo>,
    /// (step, total loss) of every iteration so far.
    #[serde(default)]
    pub history: Vec<(usize, f64)>,
    pub error: Option<String>,
    /// Step of the latest preview (0: none yet).
    #[serde(default)]
    pub preview_step: usize,
    /// Steps whose preview was kept as `snapshots/NNNNN.png`.
    #[serde(default)]
    pub snapshots: Vec<usize>,
    /// Size of `result.png`, when there is one.
    pub result_size: Option<(usize, usize)>,
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A fresh job id: 16 random lowercase hex digits.
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether `s` has the shape of a job id (so it is safe as a directory name).
pub fn is_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl JobRecord {
    /// The API's view: the record plus the queue `position` (1 = next; 0 = not queued) and the
    /// URLs of its images and events; without `history` unless asked for.
    pub fn view(&self, position: usize, with_history: bool) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        let base = format!("/api/jobs/{}", self.id);
        if let Value::Object(m) = &mut v {
            if !with_history {
                m.remove("history");
            }
            for s in ["content", "styles"] {
                strip_files(m.get_mut(s));
            }
            m.insert("position".into(), position.into());
            m.insert("events_url".into(), format!("{base}/events").into());
            let preview = (self.preview_step > 0)
                .then(|| format!("{base}/preview.png?step={}", self.preview_step));
            m.insert("preview_url".into(), preview.into());
            let result = self
                .result_size
                .is_some()
                .then(|| format!("{base}/result.png"));
            m.insert("result_url".into(), result.into());
            let snaps: Vec<Value> = self
                .snapshots
                .iter()
                .map(|s| json!({"step": s, "url": format!("{base}/snapshots/{s}")}))
                .collect();
            m.insert("snapshots".into(), snaps.into());
        }
        v
    }
}

/// Server-side file names are not part of the API.
fn strip_files(v: Option<&mut Value>) {
    match v {
        Some(Value::Object(m)) => {
            m.remove("file");
        }
        Some(Value::Array(a)) => a.iter_mut().for_each(|x| strip_files(Some(x))),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_checked() {
        let id = new_id();
        assert!(is_id(&id), "{id}");
        assert!(!is_id("../../etc/passwd"));
        assert!(!is_id("0123456789ABCDEF"));
        assert!(!is_id("0123456789abcde"));
    }

    #[test]
    fn record_round_trips_and_view_hides_files() {
        let img = InputImage {
            source: "upload".into(),
            name: "cat.png".into(),
            file: Some("content.png".into()),
            width: 4,
            height: 3,
        };
        let rec = JobRecord {
            id: new_id(),
            status: Status::Done,
            created: 1.0,
            started: Some(2.0),
            finished: Some(3.0),
            params: Params::default(),
            content: img.clone(),
            styles: vec![img],
            progress: None,
            history: vec![(1, 2.0)],
            error: None,
            preview_step: 5,
            snapshots: vec![5],
            result_size: Some((4, 3)),
        };
        let text = serde_json::to_string(&rec).unwrap();
        let back: JobRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, rec);
        let v = rec.view(0, false);
        assert!(v.get("history").is_none());
        assert!(v["content"].get("file").is_none());
        assert!(v["styles"][0].get("file").is_none());
        assert_eq!(v["status"], "done");
        assert_eq!(v["result_url"], format!("/api/jobs/{}/result.png", rec.id));
        assert_eq!(rec.view(0, true)["history"][0][1], 2.0);
    }
}
