//! API JSON files from the seeds and from Ping's tooling, used verbatim by the configuration tests.

/// Seed 000: the OAuth2 snippet (root API), closed into a complete file.
pub(crate) const SEED_000_OAUTH: &str = r#"{
"api_metadata": {
	 "protocol": "http",
	 "url": "/",
	 "hostname": "*",
	 "cookie": "",
				"cookie_idle_timeout": "200m",
				"logout_api_enabled": false,
				"cookie_persistence_enabled": true,
				"oauth2_access_token": true,
				"is_token_mandatory": false,
				"apikey_qs": "",
				"apikey_header": "",
				"login_url": "",
				"enable_blocking": true,
				"api_mapping": {
				"internal_url": ""
				}
}
}"#;

/// Seed 000: the API-key snippet (root API with `apikey_qs: key_1.4`), closed into a complete file.
pub(crate) const SEED_000_APIKEY: &str = r#"{
"api_metadata": {
				"protocol": "http",
				"url": "/",
				"hostname": "*",
				"cookie": "",
				"cookie_idle_timeout": "200m",
				"logout_api_enabled": false,
				"cookie_persistence_enabled": true,
				"oauth2_access_token": true,
				"is_token_mandatory": false,
				"apikey_qs": "key_1.4",
				"apikey_header": "",
				"login_url": "",
				"enable_blocking": true,
				"api_mapping": {
				"internal_url": ""
				}
}
}"#;

/// Seed 001 (and 002): the `/rest` API with a JWT object, verbatim.
pub(crate) const SEED_001_REST: &str = r#"{
  "api_metadata": {
    "protocol": "http",
    "url": "/rest",
    "hostname": "*",
    "cookie": "",
    "cookie_idle_timeout": "200m",
    "logout_api_enabled": false,
    "cookie_persistence_enabled": false,
    "oauth2_access_token": true,
    "apikey_qs": "",
    "apikey_header": "",
    "login_url": "",
    "enable_blocking": true,
    "api_mapping": {
      "internal_url": ""
    },

    "username_header": "",
    "jwt": {
      "location": "h:authorization:bearer",
      "username": "username",
      "clientid": "client_id"
    }
  }
}"#;

/// A file as Ping's tooling writes it: every documented field, `""` for unset strings and codes,
/// mixed types (`decoy_config.response_code` a number, `api_pattern_enforcement.error_code` a string).
pub(crate) const TOOLING_FILE: &str = r#"{
  "api_metadata": {
    "protocol": "https",
    "url": "/shopapi",
    "hostname": "shop.example.com",
    "cookie": "JSESSIONID",
    "cookie_idle_timeout": "",
    "logout_api_enabled": false,
    "cookie_persistence_enabled": false,
    "oauth2_access_token": true,
    "is_token_mandatory": false,
    "apikey_qs": "",
    "apikey_header": "X-API-Key",
    "login_url": "",
    "enable_blocking": true,
    "api_mapping": { "internal_url": "" },
    "api_pattern_enforcement": {
      "protocol_allowed": "",
      "http_redirect": { "response_code": "", "response_def": "", "https_url": "" },
      "methods_allowed": [],
      "content_type_allowed": "",
      "error_code": "",
      "error_def": "",
      "error_message_body": ""
    },
    "flow_control": {
      "client_spike_threshold": "0/second",
      "server_connection_queueing": false
    },
    "api_memory_size": "128mb",
    "health_check": true,
    "health_check_interval": 60,
    "health_retry_count": 4,
    "health_url": "/health",
    "health_check_headers": {},
    "server_ssl": false,
    "servers": [
      { "host": "127.0.0.1", "port": 8080, "server_spike_threshold": "0/second", "server_connection_quota": 0 }
    ],
    "decoy_config": {
      "decoy_enabled": false,
      "response_code": 200,
      "response_def": "",
      "response_message": "",
      "decoy_subpaths": []
    },
    "username_header": "",
    "jwt": { "location": "", "username": "", "clientid": "" }
  }
}"#;

/// The root API ASE's container image ships: no jwt, blocking off, 1mb, disabled decoy.
pub(crate) const ASE_IMAGE_ROOT: &str = r#"{
  "api_metadata": {
    "protocol": "http", "url": "/", "hostname": "*", "cookie": "", "cookie_idle_timeout": "200m",
    "logout_api_enabled": false, "cookie_persistence_enabled": false, "oauth2_access_token": true,
    "is_token_mandatory": false, "apikey_qs": "", "apikey_header": "", "login_url": "",
    "enable_blocking": false, "api_mapping": { "internal_url": "" },
    "api_pattern_enforcement": { "protocol_allowed": "", "http_redirect": { "response_code": "", "response_def": "", "https_url": "" },
      "methods_allowed": [], "content_type_allowed": "", "error_code": "401", "error_def": "Unauthorized", "error_message_body": "" },
    "flow_control": { "client_spike_threshold": "0/second" },
    "api_memory_size": "1mb", "health_check": false, "health_check_interval": 60, "health_retry_count": 4,
    "health_url": "", "server_ssl": false, "servers": [],
    "decoy_config": { "decoy_enabled": false, "response_code": 200, "response_def": "OK", "response_message": "", "decoy_subpaths": [] },
    "username_header": ""
  }
}"#;
