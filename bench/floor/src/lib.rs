//! Benchmark floor: a pass-through proxy-wasm HTTP filter. It creates an HTTP context per request
//! and continues, which is the cost every wasm filter pays before doing any work.
//!
//! Its plugin configuration can add one way of reading the request headers, so the benchmark
//! can price the choice for api-warden's enforcement-only path (configurations Bm and Bh):
//! `map` reads the whole header map in one host call; `headers:a,b,c` reads the named headers
//! one host call each; `host` makes exactly the host calls api-warden's enforcement-only path
//! makes per request (the header map, `source.address`, one shared-data read of an 88-byte
//! value, the clock), so that api-warden's own work is E minus this. Anything else (the
//! default, empty) reads nothing.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor::default()) });
}}

#[derive(Clone, Default)]
enum Read {
    #[default]
    Nothing,
    Map,
    Headers(Vec<String>),
    Host,
}

/// The shared-data key the `host` mode reads (api-warden's `aw:meta` is 88 bytes).
const META: &str = "floor:meta";

#[derive(Default)]
struct Floor {
    read: Rc<RefCell<Read>>,
}

impl Context for Floor {}
impl RootContext for Floor {
    fn on_configure(&mut self, _size: usize) -> bool {
        let cfg = self.get_plugin_configuration().unwrap_or_default();
        let cfg = String::from_utf8_lossy(&cfg);
        *self.read.borrow_mut() = match cfg.trim() {
            "map" => Read::Map,
            "host" => {
                if self.set_shared_data(META, Some(&[7u8; 88]), None).is_err() {
                    return false;
                }
                Read::Host
            }
            c => match c.strip_prefix("headers:") {
                Some(names) => Read::Headers(names.split(',').map(str::to_string).collect()),
                None => Read::Nothing,
            },
        };
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass {
            read: self.read.borrow().clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass {
    read: Read,
}

impl Context for Pass {}
impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        match &self.read {
            Read::Nothing => {}
            Read::Map => {
                std::hint::black_box(self.get_http_request_headers_bytes());
            }
            Read::Host => {
                std::hint::black_box(self.get_http_request_headers_bytes());
                std::hint::black_box(self.get_property(vec!["source", "address"]));
                std::hint::black_box(self.get_shared_data(META));
                std::hint::black_box(self.get_current_time());
            }
            Read::Headers(names) => {
                for n in names {
                    std::hint::black_box(self.get_http_request_header_bytes(n));
                }
            }
        }
        Action::Continue
    }
}
