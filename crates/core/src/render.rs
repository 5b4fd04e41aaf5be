//! Configuration for other software, rendered from a checked ASE folder: the backend fields of
//! API JSON ([`backend`]), an Envoy bootstrap ([`envoy`]), Istio manifests ([`istio`]), and the
//! YAML they are written in ([`yaml`]). Values in, values out; no I/O.

pub mod backend;
pub mod envoy;
pub mod istio;
pub mod yaml;

#[cfg(test)]
mod tests;
