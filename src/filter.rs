//! The proxy-wasm contexts: the root context loads the configuration once per worker, the HTTP
//! context carries one request through the pure pipeline and acts on its decision. Host calls go
//! through [`crate::host`] only.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{self, Compiled, Notice};
use crate::host;
use crate::record::{self, Exchange};
use crate::request::RequestView;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root { context_id, config: None })
    });
}}

struct Root {
    context_id: u32,
    config: Option<Rc<Compiled>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match host::plugin_configuration() {
            Ok(b) => b,
            Err(e) => {
                log::error!("api-warden: {e}");
                return false;
            }
        };
        match config::parse(&bytes) {
            Ok(c) => {
                for n in &c.notices {
                    match n {
                        Notice::Info(m) => log::info!("api-warden: {m}"),
                        Notice::Warn(m) => log::warn!("api-warden: {m}"),
                    }
                }
                log::info!(
                    "api-warden: configuration loaded on root #{}: {} APIs",
                    self.context_id,
                    c.apis.len()
                );
                self.config = Some(Rc::new(c));
                true
            }
            Err(e) => {
                log::error!("api-warden: {e}; configuration rejected");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Http {
            context_id,
            config,
            exchange: Exchange::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    context_id: u32,
    #[allow(dead_code)]
    config: Rc<Compiled>,
    exchange: Exchange,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        log::debug!("#{} request headers", self.context_id);
        let view = RequestView::from_headers(
            host::request_headers(),
            host::property_string(&["source", "address"]),
        );
        self.exchange.start_ms = host::now_ms();
        self.exchange.request = view;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let headers = host::response_headers();
        self.exchange.response_status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse().ok());
        self.exchange.response_headers = headers;
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.exchange.response_status.is_none() {
            self.exchange.response_status =
                host::property_u64(&["response", "code"]).map(|c| c as u16);
        }
        let rec = record::build(&self.exchange);
        host::set_filter_state("api_warden.record", rec.as_bytes());
    }
}
