//! `nst-cli serve` end to end: the binary is started on 127.0.0.1 with an ephemeral port and a
//! temporary NST_HOME (so its jobs go to NST_HOME/jobs), and driven over raw HTTP/1.1: a job's
//! server-sent events to completion, its PNGs, a restart, cancel and delete, the queue, and the
//! JSON errors with their status codes. Tests skip without the VGG-19 weights (outside CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{tmp, BIN};

/// The real weights path, or None (test skipped) when they are missing outside CI.
fn weights() -> Option<PathBuf> {
    nst_tests::weights_or_skip()?;
    Some(nst::weights::default_weights_path().unwrap())
}

/// A running `nst-cli serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    home: PathBuf,
}

impl Server {
    fn start(home: &Path, weights: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--weights"])
            .arg(weights)
            .args(extra)
            .env("NST_HOME", home)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting nst-cli serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("nst-cli serve exited before printing its address");
            }
            if let Some(rest) = line
                .trim()
                .strip_prefix("nst-cli serve: listening on http://127.0.0.1:")
            {
                break rest.trim_end_matches('/').parse().unwrap();
            }
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server {
            child,
            port,
            home: home.to_path_buf(),
        }
    }

    fn jobs_dir(&self) -> PathBuf {
        self.home.join("jobs")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: not JSON: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
    /// Fails unless this is a JSON error `{"error": …}` with `status` mentioning `needle`.
    #[track_caller]
    fn assert_error(&self, status: u16, needle: &str) {
        let v = self.json();
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {v}"));
        assert_eq!(self.status, status, "{msg}");
        assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    }
}

/// Decodes a chunked body as it is read.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.inner.read_line(&mut line)?; // the CRLF after the previous chunk
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::other(format!("chunk size {line:?}: {e}")))?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

/// Send a request; returns the status, headers and a reader over the (de-chunked) body.
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Box<dyn BufRead>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_head(BufReader::new(s))
}

fn read_head(mut r: BufReader<TcpStream>) -> (u16, Vec<(String, String)>, Box<dyn BufRead>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body: Box<dyn BufRead> = if chunked {
        Box::new(BufReader::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        }))
    } else {
        Box::new(r)
    };
    (status, headers, body)
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let (status, headers, mut r) = send(port, method, path, headers, body);
    let mut body = Vec::new();
    r.read_to_end(&mut body).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

fn get(port: u16, path: &str) -> Resp {
    request(port, "GET", path, &[], b"")
}

/// A multipart/form-data body.
struct Form {
    body: Vec<u8>,
}

const BOUNDARY: &str = "nst-test-boundary-7MA4YWxkTrZu0gW";

impl Form {
    fn new() -> Form {
        Form { body: Vec::new() }
    }
    fn text(mut self, name: &str, value: &str) -> Form {
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
        self
    }
    fn file(mut self, name: &str, file_name: &str, bytes: &[u8]) -> Form {
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }
    fn post(self, port: u16) -> Resp {
        self.post_to(port, "/api/jobs")
    }
    fn post_to(mut self, port: u16, path: &str) -> Resp {
        self.body
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        request(port, "POST", path, &[("Content-Type", &ct)], &self.body)
    }
}

/// A tiny job on the gallery images.
fn small_job(iterations: usize) -> Form {
    Form::new()
        .text("content_gallery", "chelsea")
        .text("style_gallery", "shipwreck")
        .text("size", "48")
        .text("iterations", &iterations.to_string())
}

fn create(port: u16, form: Form) -> Value {
    let r = form.post(port);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/jobs/{id}").as_str())
    );
    v
}

/// Server-sent events of a job as (name, data) until the stream ends.
struct Events {
    body: Box<dyn BufRead>,
}

impl Events {
    fn open(port: u16, id: &str) -> Events {
        let (status, headers, body) =
            send(port, "GET", &format!("/api/jobs/{id}/events"), &[], b"");
        assert_eq!(status, 200);
        assert!(headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type")
                && v.starts_with("text/event-stream")));
        Events { body }
    }
}

impl Iterator for Events {
    type Item = (String, Value);
    fn next(&mut self) -> Option<(String, Value)> {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.body.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    let v = serde_json::from_str(&data).expect("event data is JSON");
                    return Some((std::mem::take(&mut name), v));
                }
                continue; // a keep-alive comment ended
            }
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }
}

/// Follow a job's events until `done`; returns every event.
fn follow(port: u16, id: &str) -> Vec<(String, Value)> {
    let events: Vec<_> = Events::open(port, id).collect();
    assert_eq!(
        events.last().map(|e| e.0.as_str()),
        Some("done"),
        "{events:?}"
    );
    events
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("a PNG");
    (img.width(), img.height())
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn job_streams_events_to_a_png_and_survives_a_restart() {
    let Some(weights) = weights() else { return };
    let home = tmp("job");
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    let content = nst_tests::asset_bytes("chelsea.png").to_vec();
    let style = nst_tests::asset_bytes("the_scream.jpg").to_vec();
    let job = create(
        port,
        Form::new()
            .file("content", "../../my cat.png", &content)
            .file("style", "scream.jpg", &style)
            .text("style_gallery", "starry_night")
            .text("style_weights", "2,1")
            .text("size", "48")
            .text("iterations", "4")
            .text("preview_every", "2")
            .text("snapshot_every", "2"),
    );
    let id = job["id"].as_str().unwrap().to_string();
    assert!(matches!(job["status"].as_str(), Some("queued" | "running")));
    assert_eq!(job["content"]["name"], "my cat.png");
    assert_eq!(job["content"]["width"], 451);
    assert_eq!(job["styles"][1]["source"], "gallery");
    assert!(job["content"].get("file").is_none());

    let events = follow(port, &id);
    assert_eq!(events[0].0, "status");
    // The snapshot's history and the progress events after it cover steps 1..=4 once each.
    let mut losses: Vec<(u64, f64)> = events[0].1["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    for (name, data) in &events {
        if name == "progress" {
            losses.push((
                data["step"].as_u64().unwrap(),
                data["loss"].as_f64().unwrap(),
            ));
            assert_eq!(data["total_steps"], 4);
            assert_eq!(
                (data["width"].as_u64(), data["height"].as_u64()),
                (Some(48), Some(32))
            );
            assert!(data["terms"]["content"].as_f64().unwrap() >= 0.0);
        }
    }
    assert_eq!(losses.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(losses.iter().all(|l| l.1.is_finite() && l.1 > 0.0));
    assert!(
        losses[3].1 < losses[0].1,
        "L-BFGS lowers the loss: {losses:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["result_size"], serde_json::json!([48, 32]));
    assert_eq!(done["progress"]["eta_seconds"], 0.0);
    assert_eq!(done["preview_step"], 4);

    let result = get(port, &format!("/api/jobs/{id}/result.png"));
    assert_eq!(result.status, 200);
    assert_eq!(result.header("content-type"), Some("image/png"));
    assert_eq!(png_size(&result.body), (48, 32));
    assert_eq!(
        png_size(&get(port, &format!("/api/jobs/{id}/preview.png")).body),
        (48, 32)
    );
    for step in [2, 4] {
        let snap = get(port, &format!("/api/jobs/{id}/snapshots/{step}"));
        assert_eq!(png_size(&snap.body), (48, 32), "snapshot {step}");
    }
    get(port, &format!("/api/jobs/{id}/snapshots/3")).assert_error(404, "no snapshot");

    // On disk: job.json and the uploads under names the server chose.
    let dir = server.jobs_dir().join(&id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "content.png",
            "job.json",
            "preview.png",
            "result.png",
            "snapshots",
            "style-0.jpg"
        ]
    );
    assert_eq!(std::fs::read(dir.join("content.png")).unwrap(), content);

    // A restarted server lists the job again, result included.
    drop(server);
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    let list = get(port, "/api/jobs").json();
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["status"], "done");
    assert!(
        jobs[0].get("history").is_none(),
        "the list leaves out histories"
    );
    assert_eq!(
        get(port, &format!("/api/jobs/{id}")).json()["history"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        get(port, &format!("/api/jobs/{id}/result.png")).body,
        result.body
    );
    // Its events: the snapshot and `done` at once.
    let again: Vec<String> = Events::open(port, &id).map(|e| e.0).collect();
    assert_eq!(again, ["status", "done"]);

    let del = request(port, "DELETE", &format!("/api/jobs/{id}"), &[], b"");
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["deleted"], true);
    get(port, &format!("/api/jobs/{id}")).assert_error(404, "no job");
    assert!(!dir.exists());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn bad_requests_get_json_errors_with_the_right_status() {
    let Some(weights) = weights() else { return };
    let home = tmp("errors");
    let server = Server::start(
        &home,
        &weights,
        &["--max-upload-mib", "1", "--max-pixels", "1000000"],
    );
    let port = server.port;

    // 413: a declared body over the limit is refused before it is sent (Expect: 100-continue).
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
            3 << 20
        );
        s.write_all(head.as_bytes()).unwrap();
        let (status, _, mut body) = read_head(BufReader::new(s));
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("upload too large"), "{text}");
    }
    // 413: a body over the limit without a declared length (chunked).
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let part = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"big.png\"\r\n\r\n"
        );
        let mut payload = part.into_bytes();
        payload.resize(payload.len() + (1 << 20) + 4096, 0);
        // Send it in chunks; the server may answer and close before the end.
        for c in payload.chunks(64 << 10) {
            if s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .is_err()
                || s.write_all(c).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let (status, _, mut body) = read_head(BufReader::new(s));
        let mut text = String::new();
        let _ = body.read_to_string(&mut text);
        assert_eq!(status, 413, "{text}");
    }
    // 413: more pixels than allowed (1200×1528), judged from the header.
    let scream = nst_tests::asset_bytes("the_scream.jpg").to_vec();
    Form::new()
        .text("content_gallery", "chelsea")
        .file("style", "scream.jpg", &scream)
        .post(port)
        .assert_error(413, "1833600 pixels");
    // 415: not an image; not a multipart body.
    Form::new()
        .file("content", "notes.txt", b"just some text")
        .text("style_gallery", "shipwreck")
        .post(port)
        .assert_error(415, "not an image");
    request(
        port,
        "POST",
        "/api/jobs",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .assert_error(415, "multipart/form-data");
    // 400: bad input, each with a message naming what is wrong.
    let png = nst_tests::asset_bytes("chelsea.png").to_vec();
    Form::new()
        .file("content", "cut.png", &png[..png.len() / 2])
        .text("style_gallery", "shipwreck")
        .post(port)
        .assert_error(400, "cut.png");
    // A JPEG cut at 3/4 would decode to grey fill; it is refused as truncated.
    let jpg = nst_tests::asset_bytes("the_scream.jpg");
    Form::new()
        .text("content_gallery", "chelsea")
        .file("style", "cut.jpg", &jpg[..jpg.len() * 3 / 4])
        .post(port)
        .assert_error(400, "truncated JPEG");
    Form::new()
        .text("content_gallery", "chelsea")
        .post(port)
        .assert_error(400, "no style image");
    Form::new()
        .text("style_gallery", "shipwreck")
        .post(port)
        .assert_error(400, "no content image");
    small_job(5)
        .text("colour", "red")
        .post(port)
        .assert_error(400, "unknown field \"colour\"");
    small_job(5)
        .text("size", "huge")
        .post(port)
        .assert_error(400, "size");
    small_job(5)
        .text("size", "5000")
        .post(port)
        .assert_error(400, "size 5000");
    small_job(0).post(port).assert_error(400, "iterations 0");
    small_job(5)
        .text("optimizer", "sgd")
        .post(port)
        .assert_error(400, "optimizer");
    if nst::engine::Device::cuda_devices().is_empty() {
        small_job(5)
            .text("device", "cuda")
            .post(port)
            .assert_error(400, "no CUDA device");
    }
    small_job(5)
        .text("device", "cuda:99")
        .post(port)
        .assert_error(400, "cuda:99");
    small_job(5)
        .text("style_weights", "1,2")
        .post(port)
        .assert_error(400, "style_weights");
    small_job(5)
        .text("style_gallery", "mona_lisa")
        .post(port)
        .assert_error(400, "no gallery image");
    // 404: unknown jobs and ids that are not ids.
    for path in [
        "/api/jobs/0123456789abcdef",
        "/api/jobs/0123456789abcdef/events",
        "/api/jobs/0123456789abcdef/result.png",
        "/api/jobs/0123456789abcdef/preview.png",
        "/api/jobs/..%2F..%2Fetc",
        "/api/gallery/nope",
        "/api/nothing",
    ] {
        get(port, path).assert_error(404, "no ");
    }
    request(port, "DELETE", "/api/jobs/0123456789abcdef", &[], b"").assert_error(404, "no job");
    request(port, "POST", "/api/jobs/0123456789abcdef/cancel", &[], b"")
        .assert_error(404, "no job");
    request(port, "PUT", "/api/jobs", &[], b"").assert_error(405, "not allowed");
    // 403: another site's page, or a DNS-rebound host name.
    request(
        port,
        "POST",
        "/api/jobs",
        &[("Origin", "http://evil.example")],
        b"",
    )
    .assert_error(403, "cross-origin");
    let (status, _, _) = {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /api/jobs HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
            .unwrap();
        read_head(BufReader::new(s))
    };
    assert_eq!(status, 403);
    // Nothing was queued by all that.
    assert_eq!(get(port, "/api/jobs").json()["jobs"], serde_json::json!([]));
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn half_sent_headers_are_cut_off_and_other_clients_are_served() {
    let Some(weights) = weights() else { return };
    let home = tmp("slowheaders");
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    // Twenty connections that never finish their headers.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1")
                .unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c
        })
        .collect();
    // Meanwhile a normal request is answered.
    assert_eq!(get(port, "/api/jobs").status, 200);
    // Each half-sent request is closed by the server (the header timeout is 10 s): the read
    // ends (EOF, or a 408 first) well before our 30 s read timeout.
    let start = Instant::now();
    for c in &mut slow {
        let mut buf = Vec::new();
        let r = c.read_to_end(&mut buf);
        assert!(r.is_ok(), "connection not closed by the server: {r:?}");
    }
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(25), "took {waited:?}");
}

#[test]
fn a_second_server_on_the_same_jobs_dir_is_refused() {
    let Some(weights) = weights() else { return };
    let home = tmp("twoservers");
    let first = Server::start(&home, &weights, &[]);
    let o = Command::new(BIN)
        .args(["serve", "--port", "0", "--weights"])
        .arg(&weights)
        .env("NST_HOME", &home)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is in use by another nst-cli serve"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The first one still serves.
    assert_eq!(get(first.port, "/api/jobs").status, 200);
}

#[test]
fn an_oversized_job_is_refused_and_the_server_lives_on() {
    let Some(weights) = weights() else { return };
    let home = tmp("oversized");
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    // style_scale 1000 resizes the style image to 48 000 px: hundreds of GB. It used to be
    // accepted and then abort the whole server on the failed allocation; now the request is
    // refused with the API field and a size that fits, before anything is stored.
    for (field, value, needle) in [
        ("style_scale", "1000", "style_scale 1000 needs about"),
        ("size", "100000", "must be 16..=1024 px on this server"),
        ("size", "16", "use at least"),
        (
            "style_scale",
            "0.01",
            "style_scale 0.01 makes style image 1",
        ),
    ] {
        let r = small_job(2).text(field, value).post(port);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 400, "{field}={value}: {body}");
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(needle), "{field}={value}: {err}");
        assert!(!err.contains("--"), "names no CLI flag: {err}");
    }
    assert_eq!(
        get(port, "/api/jobs").json()["jobs"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // The next job runs on the same server.
    let ok = create(port, small_job(2));
    let done = follow(port, ok["id"].as_str().unwrap()).pop().unwrap().1;
    assert_eq!(done["status"], "done", "{done}");
}

#[test]
fn several_photos_in_one_form_queue_a_job_each() {
    let Some(weights) = weights() else { return };
    let home = tmp("several");
    let server = Server::start(&home, &weights, &["--max-queued", "3"]);
    let port = server.port;
    let chelsea = nst_tests::asset_bytes("chelsea.png").to_vec();
    let rocket = nst_tests::asset_bytes("rocket.jpg").to_vec();
    let styled = |form: Form| {
        form.text("style_gallery", "shipwreck")
            .text("size", "48")
            .text("iterations", "2")
    };
    let jobs = || {
        get(port, "/api/jobs").json()["jobs"]
            .as_array()
            .unwrap()
            .len()
    };
    // A bad photo among good ones refuses the whole form, naming it; nothing is queued.
    let mut thin = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(4, 400)
        .write_to(&mut thin, image::ImageFormat::Png)
        .unwrap();
    for (name, bytes, status, needle) in [
        (
            "notes.txt",
            b"just some text".to_vec(),
            415,
            "notes.txt: not an image",
        ),
        (
            "thin.png",
            thin.into_inner(),
            400,
            "content image thin.png: ",
        ),
    ] {
        styled(
            Form::new()
                .file("content", "chelsea.png", &chelsea)
                .file("content", name, &bytes)
                .file("content", "rocket.jpg", &rocket),
        )
        .post(port)
        .assert_error(status, needle);
        assert_eq!(jobs(), 0, "{name}: nothing queued");
    }
    // More photos than the queue has room for (3): refused whole.
    styled(
        Form::new()
            .file("content", "a.png", &chelsea)
            .file("content", "b.png", &chelsea)
            .file("content", "c.png", &chelsea)
            .file("content", "d.jpg", &rocket),
    )
    .post(port)
    .assert_error(503, "the queue is full for the 4 photos of this form");
    assert_eq!(jobs(), 0);
    assert!(std::fs::read_dir(server.jobs_dir())
        .map(|d| d.filter_map(Result::ok).all(|e| !e.path().is_dir()))
        .unwrap_or(true));
    // Two uploads and a gallery photo: three jobs, in the order sent, each with its own photo
    // and the same style and settings.
    let r = styled(
        Form::new()
            .file("content", "chelsea.png", &chelsea)
            .file("content", "rocket.jpg", &rocket)
            .text("content_gallery", "chelsea"),
    )
    .post(port);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let created = body["jobs"].as_array().expect("{jobs: [...]}").clone();
    let names: Vec<&str> = created
        .iter()
        .map(|j| j["content"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chelsea.png", "rocket.jpg", "chelsea"]);
    let first = created[0]["id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/jobs/{first}").as_str())
    );
    for j in &created {
        assert_eq!(j["styles"][0]["name"], "shipwreck");
        assert_eq!(j["params"]["size"], 48);
        let id = j["id"].as_str().unwrap();
        let done = follow(port, id).pop().unwrap().1;
        assert_eq!(done["status"], "done", "{done}");
        let png = get(port, &format!("/api/jobs/{id}/result.png")).body;
        assert_eq!(png_size(&png), (48, 32), "{id}");
    }
    assert_eq!(jobs(), 3);
    // One photo still answers the job itself.
    let one = create(port, small_job(2));
    assert!(one["jobs"].is_null() && one["content"]["name"] == "chelsea");
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn queue_positions_cancel_and_delete() {
    let Some(weights) = weights() else { return };
    let home = tmp("queue");
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    let wait_running = |id: &str| {
        let mut ev = Events::open(port, id);
        assert!(ev.any(|(name, _)| name == "progress"), "job {id} never ran");
    };
    let a = create(port, small_job(2000));
    let a = a["id"].as_str().unwrap().to_string();
    let b = create(port, small_job(3));
    let b = b["id"].as_str().unwrap().to_string();
    let c = create(port, small_job(2000));
    let c = c["id"].as_str().unwrap().to_string();
    wait_running(&a);
    let view = |id: &str| get(port, &format!("/api/jobs/{id}")).json();
    assert_eq!(view(&a)["status"], "running");
    assert_eq!(
        (view(&b)["status"].as_str(), view(&b)["position"].as_u64()),
        (Some("queued"), Some(1))
    );
    assert_eq!(view(&c)["position"], 2);
    get(port, &format!("/api/jobs/{b}/result.png")).assert_error(404, "no result (queued)");

    // Cancelling a queued job: at once, no result; the one behind moves up.
    let r = request(port, "POST", &format!("/api/jobs/{b}/cancel"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "cancelled");
    assert_eq!(view(&c)["position"], 1);
    request(port, "POST", &format!("/api/jobs/{b}/cancel"), &[], b"")
        .assert_error(409, "already cancelled");

    // Cancelling the running job keeps the image reached as its result.
    let mut events = Events::open(port, &a);
    let r = request(port, "POST", &format!("/api/jobs/{a}/cancel"), &[], b"");
    assert_eq!(r.status, 200);
    let done = events.find(|e| e.0 == "done").expect("a done event").1;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["result_size"], serde_json::json!([48, 32]));
    let steps = done["progress"]["step"].as_u64().unwrap();
    assert!((1..2000).contains(&steps), "stopped early: {steps}");
    assert_eq!(
        png_size(&get(port, &format!("/api/jobs/{a}/result.png")).body),
        (48, 32)
    );

    // Deleting the running job: gone from the API at once, its directory once it stops.
    wait_running(&c);
    let c_dir = server.jobs_dir().join(&c);
    assert!(c_dir.exists());
    let r = request(port, "DELETE", &format!("/api/jobs/{c}"), &[], b"");
    assert_eq!(r.status, 200);
    get(port, &format!("/api/jobs/{c}")).assert_error(404, "no job");
    wait_until("the deleted job's directory to go", || !c_dir.exists());

    // Deleting a queued job, and one that is over.
    let d = create(port, small_job(2000))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_running(&d);
    let e = create(port, small_job(2000))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(view(&e)["position"], 1);
    assert_eq!(
        request(port, "DELETE", &format!("/api/jobs/{e}"), &[], b"").status,
        200
    );
    assert!(!server.jobs_dir().join(&e).exists());
    assert_eq!(
        request(port, "DELETE", &format!("/api/jobs/{d}"), &[], b"").status,
        200
    );
    assert_eq!(
        request(port, "DELETE", &format!("/api/jobs/{b}"), &[], b"").status,
        200
    );
    let left: Vec<String> = get(port, "/api/jobs").json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [a]);
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn page_info_and_gallery_are_served() {
    let Some(weights) = weights() else { return };
    let home = tmp("page");
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    let page = get(port, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<script src=\"/app.js\""));
    for (path, ct) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(port, path);
        assert_eq!(
            (r.status, r.header("content-type")),
            (200, Some(ct)),
            "{path}"
        );
    }
    let info = get(port, "/api/info").json();
    assert_eq!(info["devices"][0]["id"], "cpu");
    assert_eq!(info["devices"][0]["available"], true);
    if nst::engine::Device::cuda_devices().is_empty() {
        assert_eq!(info["devices"][1]["id"], "cuda");
        assert_eq!(info["devices"][1]["available"], false);
    } else {
        assert_eq!(info["devices"][1]["id"], "cuda:0");
        assert_eq!(info["devices"][1]["available"], true);
    }
    assert_eq!(info["limits"]["max_size"], 1024);
    assert_eq!(info["defaults"]["optimizer"], "lbfgs");
    let ids: Vec<&str> = info["gallery"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chelsea", "starry_night", "the_scream", "shipwreck"]);
    let starry = get(port, "/api/gallery/starry_night");
    assert_eq!(starry.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        starry.body,
        nst_tests::asset_bytes("starry_night.jpg").to_vec()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn instant_pictures_and_refining_them() {
    let Some(weights) = weights() else { return };
    let cache = nst::weights::weights_cache_dir().unwrap();
    let nets = ["arbitrary_predict", "arbitrary_transform"];
    if !nets
        .iter()
        .all(|n| cache.join(format!("{n}.safetensors")).exists())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "feed-forward weights missing in CI"
        );
        eprintln!("skipped: run `nst-cli weights fetch`");
        return;
    }
    // Without the feed-forward networks in its home: instant mode is off, and says how to add it.
    let bare = tmp("instant-bare");
    let server = Server::start(&bare, &weights, &[]);
    assert_eq!(get(server.port, "/api/info").json()["instant"], false);
    let form = || {
        Form::new()
            .text("content_gallery", "chelsea")
            .text("style_gallery", "the_scream")
            .text("size", "256")
    };
    form()
        .post_to(server.port, "/api/instant")
        .assert_error(503, "nst-cli weights fetch");
    drop(server);
    // With them (linked into the server's home).
    let home = tmp("instant");
    for n in nets {
        let f = format!("{n}.safetensors");
        std::os::unix::fs::symlink(cache.join(&f), home.join(&f)).unwrap();
    }
    let server = Server::start(&home, &weights, &[]);
    let port = server.port;
    assert_eq!(get(port, "/api/info").json()["instant"], true);
    let r = form().post_to(port, "/api/instant");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(png_size(&r.body), (256, 170));
    assert!(nst::provenance::written_by_nst_bytes(&r.body));
    // Bad requests are JSON errors, as for jobs.
    form()
        .text("size", "4096")
        .post_to(port, "/api/instant")
        .assert_error(400, "size");
    Form::new()
        .text("content_gallery", "chelsea")
        .post_to(port, "/api/instant")
        .assert_error(400, "no style image");
    form()
        .text("content_gallery", "chelsea")
        .post_to(port, "/api/instant")
        .assert_error(400, "one content image");
    // Refine: a job that starts from the instant picture.
    let job = create(port, small_job(2).text("init", "fast"));
    let done = follow(port, job["id"].as_str().unwrap()).pop().unwrap().1;
    assert_eq!(done["status"], "done", "{done}");
}
