//! Raw HTTP/1.1 for the tests: one request per connection (any bytes, invalid HTTP too) with the
//! response parsed, and [`TestServer`], a small server standing in for the analytics engine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET on 127.0.0.1:port.
pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    request(port, "GET", path, &[], None)
}

/// One HTTP/1.1 request with `Connection: close` on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        raw.extend_from_slice(b"host: localhost\r\n");
    }
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(b) = body {
        raw.extend_from_slice(format!("content-length: {}\r\n", b.len()).as_bytes());
    }
    raw.extend_from_slice(b"connection: close\r\n\r\n");
    if let Some(b) = body {
        raw.extend_from_slice(b);
    }
    raw_request(&format!("127.0.0.1:{port}"), &raw)
}

/// Send raw bytes (anything, including invalid HTTP) and parse the response.
pub fn raw_request(addr: &str, raw: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            let _ = r.read_to_end(&mut body);
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A request a [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A handler: the status and body to answer. Status 0 answers a head announcing 100 bytes, one
/// byte of body, then closes the connection (an answer cut short).
type Handler = dyn Fn(&Received) -> (u16, Vec<u8>) + Send + Sync;

/// A small HTTP/1.1 server on a free loopback port standing in for the analytics engine (attack
/// list, collector). The handler can be swapped while it runs; every request is recorded.
pub struct TestServer {
    pub port: u16,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    handler: std::sync::Arc<std::sync::Mutex<std::sync::Arc<Handler>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TestServer {
    /// Start serving with `handler`.
    pub fn start(
        handler: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler: std::sync::Arc<std::sync::Mutex<std::sync::Arc<Handler>>> =
            std::sync::Arc::new(std::sync::Mutex::new(std::sync::Arc::new(handler)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, h, s) = (received.clone(), handler.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, h) = (r.clone(), h.clone());
                        std::thread::spawn(move || serve(stream, r, h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TestServer {
            port,
            received,
            handler,
            stop,
        }
    }

    /// Replace the handler.
    pub fn set(&self, handler: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = std::sync::Arc::new(handler);
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A STATIC cluster named `name` pointing at this server (for [`super::Opts::extra_clusters`]).
    pub fn cluster(&self, name: &str) -> String {
        super::yaml::cluster(name, self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    handler: std::sync::Arc<std::sync::Mutex<std::sync::Arc<Handler>>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Received {
            method,
            path,
            headers,
            body,
        };
        received.lock().unwrap().push(req.clone());
        // Not under the lock: a slow answer must not hold the other connections back.
        let h = handler.lock().unwrap().clone();
        let (status, out) = h(&req);
        if status == 0 {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{");
            return;
        }
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            out.len()
        );
        if w.write_all(head.as_bytes())
            .and_then(|_| w.write_all(&out))
            .is_err()
        {
            return;
        }
    }
}
