//! PingAuthorize: unit tests (filled below).
