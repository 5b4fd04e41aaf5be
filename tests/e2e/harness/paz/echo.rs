//! The small threaded HTTP/1.1 server under both doubles ([`serve`]: content-length and chunked
//! request bodies, keep-alive, answers delayed or cut) and the [`Echo`] upstream, which answers
//! JSON describing exactly what it received.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// One HTTP request a server received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// In arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body came with `transfer-encoding: chunked`.
    pub chunked: bool,
}

impl Call {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a server answers: status, headers (`content-length` is added), body; after `delay`;
/// `cut` closes the connection without a byte; with `trailers` the body is sent chunked and the
/// trailers after it.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    pub cut: bool,
    pub trailers: Vec<(String, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
            ..Reply::default()
        }
    }
}

type Handler = dyn Fn(&Call) -> Reply + Send + Sync;

/// A running server: its port and every request received; stops accepting on drop.
pub struct Server {
    pub port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
}

/// Serve `handler` on a free loopback port, one thread per connection, keep-alive.
pub fn serve(handler: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let handler: Arc<Handler> = Arc::new(handler);
    let (c, s) = (calls.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let (c, h) = (c.clone(), handler.clone());
                    std::thread::spawn(move || connection(stream, &c, &*h));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { port, calls, stop }
}

impl Server {
    /// Every request received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    /// A STATIC cluster named `name` pointing at this server.
    pub fn cluster(&self, name: &str) -> String {
        crate::harness::yaml::cluster(name, self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn line(r: &mut impl BufRead) -> Option<String> {
    let mut l = String::new();
    (r.read_line(&mut l).ok()? > 0).then(|| l.trim_end_matches(['\r', '\n']).to_string())
}

/// Read one request (`None` at the end of the connection or on bad framing).
fn read_request(r: &mut impl BufRead) -> Option<Call> {
    let start = line(r)?;
    let mut parts = start.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let h = line(r)?;
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let size = line(r)?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !line(r)?.is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            line(r)?;
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Call {
        method,
        path,
        headers,
        body,
        chunked,
    })
}

fn connection(stream: TcpStream, calls: &Mutex<Vec<Call>>, handler: &Handler) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    while let Some(call) = read_request(&mut r) {
        calls.lock().unwrap().push(call.clone());
        let reply = handler(&call);
        std::thread::sleep(reply.delay);
        if reply.cut {
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let mut body = reply.body.clone();
        if reply.trailers.is_empty() {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        } else {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
            chunked.extend_from_slice(&body);
            chunked.extend_from_slice(b"\r\n0\r\n");
            for (k, v) in &reply.trailers {
                chunked.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            chunked.extend_from_slice(b"\r\n");
            body = chunked;
        }
        if w.write_all(head.as_bytes())
            .and_then(|_| w.write_all(&body))
            .is_err()
        {
            return;
        }
    }
}

/// The upstream: answers 200 with JSON describing the request (`method`, `path` with query,
/// `headers` as `[name, value]` pairs in order, `body`, `chunked`) plus an `account` object with
/// a field a policy may remove (`ssn`). Its response headers: `content-type`, `x-upstream`,
/// `x-private`, `vary`, `date`, and `set-cookie` twice. Asked by request headers:
/// `x-echo-status: N` answers N; `x-echo-size: N` answers a JSON body of exactly N bytes
/// (`x-echo-size: 0`: no body); `x-echo-gzip: 1` gzips the answer when the request's
/// `accept-encoding` allows gzip; `x-echo-trailers: 1` sends it chunked with a trailer
/// `x-checksum`.
pub struct Echo {
    pub server: Server,
}

/// The fields of `account` in every echo answer.
pub fn account() -> Value {
    json!({"owner": "alice", "ssn": "078-05-1120", "plan": "gold"})
}

impl Echo {
    pub fn start() -> Echo {
        Echo {
            server: serve(echo),
        }
    }

    /// Requests the upstream received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.server.calls()
    }
}

fn echo(c: &Call) -> Reply {
    let mut body = json!({
        "method": c.method,
        "path": c.path,
        "headers": c.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": String::from_utf8_lossy(&c.body),
        "chunked": c.chunked,
        "account": account(),
    })
    .to_string()
    .into_bytes();
    if let Some(n) = c
        .header("x-echo-size")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let pad = n.saturating_sub(r#"{"pad":""}"#.len());
        body = format!(r#"{{"pad":"{}"}}"#, "a".repeat(pad)).into_bytes();
        body.truncate(n);
    }
    let status = c
        .header("x-echo-status")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut headers: Vec<(String, String)> = [
        ("content-type", "application/json"),
        ("x-upstream", "echo"),
        ("x-private", "internal-only"),
        ("vary", "accept-encoding"),
        ("date", "Tue, 01 Dec 2026 10:00:00 GMT"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let gzip_ok = c
        .header("accept-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    if c.header("x-echo-gzip").is_some() && gzip_ok {
        body = gzip(&body);
        headers.push(("content-encoding".into(), "gzip".into()));
    }
    let mut trailers = Vec::new();
    if c.header("x-echo-trailers").is_some() {
        trailers.push(("x-checksum".to_string(), body.len().to_string()));
    }
    Reply {
        status,
        headers,
        body,
        trailers,
        ..Reply::default()
    }
}

/// `data` as a gzip member of stored (uncompressed) deflate blocks: valid gzip, no dependency.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    if chunks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
