//! A static file server standing in for nginx or an object store: it serves one directory's
//! files with an `ETag` (a hash of the content, as object stores do) and `Last-Modified`, and
//! answers `If-None-Match` with `304 Not Modified`; every request head is recorded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// One request the server received: its path, headers and the status it answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The server; stops on drop.
pub struct StaticServer {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
}

impl StaticServer {
    /// Serve the files of `dir` on a free loopback port.
    pub fn start(dir: PathBuf) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &dir, &h),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        StaticServer { port, hits, stop }
    }

    /// Requests so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// FNV-1a of the content, as the strong ETag.
fn etag(body: &[u8]) -> String {
    let h = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{h:016x}\"")
}

/// One request per connection (`connection: close`).
fn serve(stream: TcpStream, dir: &std::path::Path, hits: &Mutex<Vec<Hit>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let file = dir.join(path.trim_start_matches('/'));
    let (status, head, body) = match std::fs::read(&file) {
        Ok(body) => {
            let tag = etag(&body);
            let mtime = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let head = format!("etag: {tag}\r\nlast-modified: @{mtime}\r\n");
            let matched = headers
                .iter()
                .any(|(k, v)| k == "if-none-match" && v.split(',').any(|t| t.trim() == tag));
            if matched {
                (304, head, Vec::new())
            } else {
                (200, head, body)
            }
        }
        Err(_) => (404, String::new(), b"not found".to_vec()),
    };
    hits.lock().unwrap().push(Hit {
        path,
        headers,
        status,
    });
    let out = format!(
        "HTTP/1.1 {status} X\r\n{head}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = w
        .write_all(out.as_bytes())
        .and_then(|()| w.write_all(&body));
}
