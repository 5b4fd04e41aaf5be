//! The configuration table: `{name, config, expect_err}` rows over every section, and the helpers
//! that build the configurations.

use super::seeds::{ASE_IMAGE_ROOT, SEED_000_APIKEY, SEED_000_OAUTH, SEED_001_REST, TOOLING_FILE};

/// One API named `shop` at `/shop` on any host, with extra `api_metadata` fields.
pub(super) fn shop(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"apis":[{{"name":"shop","api_metadata":{{"url":"/shop","hostname":"*"{sep}{extra}}}}}]}}"#
    )
}

/// Like [`shop`] with a `jwt` object built from `location`, `username`, `clientid`.
pub(super) fn jwt(location: &str, username: &str, clientid: &str) -> String {
    shop(&format!(
        r#""jwt":{{"location":{location:?},"username":{username:?},"clientid":{clientid:?}}}"#
    ))
}

/// Two APIs given as (name or "", hostname, url).
pub(super) fn two(a: (&str, &str, &str), b: (&str, &str, &str)) -> String {
    let one = |(n, h, u): (&str, &str, &str)| {
        let name = if n.is_empty() {
            String::new()
        } else {
            format!(r#""name":{n:?},"#)
        };
        format!(r#"{{{name}"api_metadata":{{"hostname":{h:?},"url":{u:?}}}}}"#)
    };
    format!(r#"{{"apis":[{},{}]}}"#, one(a), one(b))
}

pub(super) fn ase(body: &str) -> String {
    format!(r#"{{"ase":{{{body}}}}}"#)
}

pub(super) struct Row {
    pub(super) name: &'static str,
    pub(super) config: String,
    /// `""`: must load; otherwise a substring of the error message.
    pub(super) expect_err: &'static str,
}

pub(super) fn row(name: &'static str, config: impl Into<String>, expect_err: &'static str) -> Row {
    Row {
        name,
        config: config.into(),
        expect_err,
    }
}

#[rustfmt::skip]
pub(super) fn rows() -> Vec<Row> {
    let mut rows = vec![
        // --- top level ---
        row("empty config", "", ""),
        row("whitespace config", " \n\t\r ", ""),
        row("empty object", "{}", ""),
        row("byte order mark", "\u{feff}{}", ""),
        row("not json", "apis: []", "plugin configuration is not JSON: "),
        row("truncated json", r#"{"apis": ["#, "plugin configuration is not JSON: "),
        row("array", "[]", "must be a JSON object, got an array"),
        row("null", "null", "must be a JSON object, got null"),
        row("number", "42", "must be a JSON object, got number 42"),
        row("string", r#""x""#, "must be a JSON object"),
        row("apis not array", r#"{"apis":{}}"#, "apis must be an array"),
        row("apis null", r#"{"apis":null}"#, ""),
        row("apis empty", r#"{"apis":[]}"#, ""),
        row("api entry not object", r#"{"apis":[1]}"#, "apis[0] must be an object"),
        row("api entry without api_metadata", r#"{"apis":[{}]}"#, r#"apis[0]: "api_metadata" is missing"#),
        row("api_metadata not object", r#"{"apis":[{"api_metadata":[]}]}"#, "apis[0]: api_metadata must be an object, got an array"),
        row("apis and api_metadata", r#"{"apis":[],"api_metadata":{}}"#, "both \"apis\" and a top-level \"api_metadata\""),
        row("service sections", r#"{"attack_list":{"cluster":"abs","path":"/v4/attacks"},"admin":{"path":"/_api_warden","key":"0123456789abcdef"},"analytics":{}}"#, ""),
        row("unknown top-level key warns", r#"{"foo":1,"bar":{}}"#, ""),
        row("single API form", SEED_001_REST, ""),
        row("single API form with name", r#"{"name":"x","api_metadata":{"url":"/","hostname":"*"}}"#, ""),
        row("single API form bad metadata", r#"{"api_metadata":"x"}"#, "api_metadata must be an object"),
        // --- service sections (their own unit tests are in services.rs) ---
        row("admin path relative", r#"{"admin":{"path":"_api_warden","key":"0123456789abcdef"}}"#, r#"admin.path "_api_warden" must start with /"#),
        row("admin key short", r#"{"admin":{"path":"/_api_warden","key":"short"}}"#, "admin.key must be at least 16 characters"),
        row("attack_list cluster empty", r#"{"attack_list":{"cluster":"","path":"/v4"}}"#, "attack_list.cluster is empty"),
        row("attack_list typo", r#"{"attack_list":{"cluster":"abs","path":"/v4","intervall_s":60}}"#, "attack_list: unknown field `intervall_s`"),
        row("analytics cluster empty", r#"{"analytics":{"cluster":""}}"#, "analytics.cluster is empty"),
        row("analytics path relative", r#"{"analytics":{"path":"x"}}"#, r#"analytics.path "x" must start with /"#),
        // --- ase ---
        row("ase defaults", ase(""), ""),
        row("ase full", ase( r#""enable_firewall":false,"enable_ase_detected_attack":false,"enable_xff":true,"xff_num_trusted_hops":2,"detected_attack_ttl_s":3600,"block_response":{"status":429,"body":"slow down","headers":{"Retry-After":"60"}}"#, ), ""),
        row("ase not object", r#"{"ase":true}"#, "ase must be an object, got boolean true"),
        row("ase bool as string", ase(r#""enable_firewall":"yes""#), "ase.enable_firewall must be a boolean"),
        row("ase xff bool as number", ase(r#""enable_xff":1"#), "ase.enable_xff must be a boolean"),
        row("ase detected bool", ase(r#""enable_ase_detected_attack":"true""#), "ase.enable_ase_detected_attack must be a boolean"),
        row("ase hops negative", ase(r#""xff_num_trusted_hops":-1"#), "ase.xff_num_trusted_hops must be an integer from 0"),
        row("ase hops fraction", ase(r#""xff_num_trusted_hops":1.5"#), "ase.xff_num_trusted_hops must be an integer from 0"),
        row("ase hops too big", ase(r#""xff_num_trusted_hops":5000000000"#), "ase.xff_num_trusted_hops must be an integer from 0 to 4294967295"),
        row("ase ttl string", ase(r#""detected_attack_ttl_s":"10""#), "ase.detected_attack_ttl_s must be an integer"),
        row("ase unknown key warns", ase(r#""enable_abs":true,"attack_list_memory":128"#), ""),
        row("block_response not object", ase(r#""block_response":"x""#), "ase.block_response must be an object"),
        row("block status 199", ase(r#""block_response":{"status":199}"#), "ase.block_response.status must be from 200 to 599, got 199"),
        row("block status 600", ase(r#""block_response":{"status":600}"#), "ase.block_response.status must be from 200 to 599, got 600"),
        row("block status 200", ase(r#""block_response":{"status":200}"#), ""),
        row("block status 599", ase(r#""block_response":{"status":599}"#), ""),
        row("block status string", ase(r#""block_response":{"status":"403"}"#), "ase.block_response.status must be an integer"),
        row("block body number", ase(r#""block_response":{"body":1}"#), "ase.block_response.body must be a string"),
        row("block headers array", ase(r#""block_response":{"headers":[]}"#), "ase.block_response.headers must be an object"),
        row("block header bad name", ase(r#""block_response":{"headers":{"bad name":"x"}}"#), r#""bad name" is not a valid HTTP header name"#),
        row("block header pseudo", ase(r#""block_response":{"headers":{":status":"200"}}"#), "is not a valid HTTP header name"),
        row("block header number", ase(r#""block_response":{"headers":{"x-a":1}}"#), "ase.block_response.headers.x-a must be a string"),
        row("block header CRLF", ase(r#""block_response":{"headers":{"x-a":"a\r\nb: c"}}"#), "must not contain CR, LF or NUL"),
        // --- deny_list / allow_list ---
        row("lists", r#"{"deny_list":{"ip":["10.0.0.1","2001:DB8::1"],"token":["t"],"api_key":["k"],"cookie":["c"],"username":["u"]},"allow_list":{"ip":[],"username":null}}"#, ""),
        row("list not object", r#"{"deny_list":[]}"#, "deny_list must be an object"),
        row("list unknown type", r#"{"allow_list":{"email":[]}}"#, r#"allow_list: unknown identifier type "email""#),
        row("list values not array", r#"{"deny_list":{"ip":"1.2.3.4"}}"#, "deny_list.ip must be an array of strings"),
        row("list number value", r#"{"deny_list":{"ip":["1.2.3.4",5]}}"#, "deny_list.ip[1] must be a non-empty string, got number 5"),
        row("list empty string", r#"{"allow_list":{"token":["a",""]}}"#, "allow_list.token[1] must be a non-empty string"),
        row("list blank string", r#"{"deny_list":{"username":["  "]}}"#, "deny_list.username[0] must be a non-empty string"),
        row("list null value", r#"{"deny_list":{"cookie":[null]}}"#, "deny_list.cookie[0] must be a non-empty string, got null"),
        row("list bad ip", r#"{"deny_list":{"ip":["1.2.3"]}}"#, r#"deny_list.ip[0] "1.2.3" is not an IPv4 or IPv6 address"#),
        row("list cidr", r#"{"allow_list":{"ip":["10.0.0.0/8"]}}"#, "allow_list.ip[0] \"10.0.0.0/8\" is not an IPv4 or IPv6 address"),
        // --- names and uniqueness ---
        row("name number", r#"{"apis":[{"name":5,"api_metadata":{"url":"/","hostname":"*"}}]}"#, "apis[0]: name must be a string"),
        row("name bad chars", r#"{"apis":[{"name":"my api","api_metadata":{"url":"/","hostname":"*"}}]}"#, r#"apis[0]: name "my api" may only contain"#),
        row("name empty derives", r#"{"apis":[{"name":"","api_metadata":{"url":"/","hostname":"*"}}]}"#, ""),
        row("repeated name", two(("shop", "*", "/a"), ("shop", "*", "/b")), r#"apis[0] and apis[1] are both named "shop""#),
        row("repeated derived name", two(("", "a.com", "/rest"), ("", "b.com", "/rest")), r#"both named "rest""#),
        row("derived name repeats given", two(("rest", "*", "/a"), ("", "*", "/rest")), r#"both named "rest""#),
        row("same host and url", two(("a", "*", "/x"), ("b", "*", "/x")), r#"api "a" and api "b" both have hostname "*" and url "/x""#),
        row("same host and url normalized", two(("a", "Shop.COM", "/x/"), ("b", "shop.com:80", "//x")), r#"api "a" and api "b" both have hostname "shop.com" and url "/x""#),
        row("same url other host", two(("a", "shop.com", "/x"), ("b", "*", "/x")), ""),
        row("same host other url", two(("a", "*", "/x"), ("b", "*", "/x/y")), ""),
        // --- hostname / url ---
        row("hostname missing", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/"}}]}"#, r#"api "shop": hostname is missing or empty"#),
        row("hostname empty", shop(r#""hostname":"""#).replace(r#""hostname":"*","#, ""), r#"api "shop": hostname is missing or empty"#),
        row("hostname wildcard suffix", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/","hostname":"*.example.com"}}]}"#, r#"api "shop": hostname "*.example.com": only "*" alone"#),
        row("hostname junk", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/","hostname":"a b/c"}}]}"#, r#"api "shop": hostname "a b/c" is not a host name"#),
        row("hostname number", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/","hostname":5}}]}"#, r#"api "shop": hostname must be a string, got number 5"#),
        row("hostname ipv6", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/","hostname":"[::1]:8443"}}]}"#, ""),
        row("url missing", r#"{"apis":[{"name":"shop","api_metadata":{"hostname":"*"}}]}"#, r#"api "shop": url is missing or empty"#),
        row("url missing no name", r#"{"apis":[{"api_metadata":{"hostname":"*"}}]}"#, r#"api "apis[0]": url is missing"#),
        row("url relative", r#"{"apis":[{"name":"shop","api_metadata":{"url":"rest","hostname":"*"}}]}"#, r#"api "shop": url "rest" must start with "/""#),
        row("url with query", r#"{"apis":[{"name":"shop","api_metadata":{"url":"/a?b=1","hostname":"*"}}]}"#, r#"api "shop": url "/a?b=1" must not contain a query"#),
        row("url number", r#"{"apis":[{"name":"shop","api_metadata":{"url":1,"hostname":"*"}}]}"#, r#"api "shop": url must be a string, got number 1"#),
        // --- strictly typed fields ---
        row("enable_blocking yes", shop(r#""enable_blocking":"yes""#), r#"api "shop": enable_blocking must be a boolean (true or false), got string "yes""#),
        row("oauth2_access_token number", shop(r#""oauth2_access_token":1"#), r#"api "shop": oauth2_access_token must be a boolean"#),
        row("is_token_mandatory string", shop(r#""is_token_mandatory":"false""#), r#"api "shop": is_token_mandatory must be a boolean"#),
        row("logout_api_enabled empty string", shop(r#""logout_api_enabled":"""#), r#"api "shop": logout_api_enabled must be a boolean"#),
        row("cookie_persistence_enabled object", shop(r#""cookie_persistence_enabled":{}"#), r#"api "shop": cookie_persistence_enabled must be a boolean (true or false), got an object"#),
        row("booleans null", shop(r#""enable_blocking":null"#), ""),
        row("cookie number", shop(r#""cookie":1"#), r#"api "shop": cookie must be a string"#),
        row("apikey_qs bool", shop(r#""apikey_qs":true"#), r#"api "shop": apikey_qs must be a string"#),
        row("apikey_header number", shop(r#""apikey_header":1"#), r#"api "shop": apikey_header must be a string"#),
        row("username_header array", shop(r#""username_header":[]"#), r#"api "shop": username_header must be a string, got an array"#),
        row("cookie_idle_timeout number", shop(r#""cookie_idle_timeout":200"#), r#"api "shop": cookie_idle_timeout must be a string"#),
        row("protocol number", shop(r#""protocol":1"#), r#"api "shop": protocol must be a string"#),
        row("login_url bool", shop(r#""login_url":false"#), r#"api "shop": login_url must be a string"#),
        row("protocol ftp", shop(r#""protocol":"ftp""#), r#"api "shop": protocol "ftp" must be http, https or ws"#),
        row("protocol wss", shop(r#""protocol":"wss""#), "must be http, https or ws"),
        row("protocol HTTPS", shop(r#""protocol":"HTTPS""#), ""),
        row("protocol ws", shop(r#""protocol":"ws""#), ""),
        row("protocol empty", shop(r#""protocol":"""#), ""),
        row("cookie bad name", shop(r#""cookie":"my cookie""#), r#"api "shop": cookie "my cookie" is not a valid"#),
        row("apikey both", shop(r#""apikey_qs":"k","apikey_header":"X-Key""#), r#"api "shop": apikey_qs "k" and apikey_header "X-Key" are both set"#),
        row("apikey_header bad", shop(r#""apikey_header":"x key""#), r#"api "shop": apikey_header "x key" is not a valid"#),
        row("username_header bad", shop(r#""username_header":"x:user""#), r#"api "shop": username_header "x:user" is not a valid"#),
        // --- loosely checked fields ---
        row("pattern enforcement string", shop(r#""api_pattern_enforcement":"x""#), r#"api "shop": api_pattern_enforcement must be an object"#),
        row("flow_control number", shop(r#""flow_control":5"#), r#"api "shop": flow_control must be an object"#),
        row("decoy_config array", shop(r#""decoy_config":[]"#), r#"api "shop": decoy_config must be an object"#),
        row("loose fields empty strings", shop(r#""api_pattern_enforcement":"","flow_control":"","decoy_config":"""#), ""),
        row("decoy off: its fields are not checked", shop(r#""decoy_config":{"response_code":"x","decoy_subpaths":5}"#), ""),
        row("decoy sub-paths checked", shop(r#""decoy_config":{"decoy_enabled":true,"decoy_subpaths":["x"]}"#), r#"api "shop": decoy_config.decoy_subpaths[0] "x" must be a path starting with "/" below the API's url"#),
        row("decoy status checked", shop(r#""decoy_config":{"decoy_enabled":true,"response_code":"OK"}"#), r#"api "shop": decoy_config.response_code must be an HTTP status (100-599) as a number or a numeric string, got "OK""#),
        row("threshold must be a string", shop(r#""flow_control":{"client_spike_threshold":5}"#), r#"api "shop": flow_control.client_spike_threshold must be a string like "100/second", got 5"#),
        row("threshold unit", shop(r#""flow_control":{"client_spike_threshold":"5/day"}"#), r#"api "shop": flow_control.client_spike_threshold "5/day" must be N/second, N/minute or N/hour (N a whole number)"#),
        row("pattern protocol", shop(r#""api_pattern_enforcement":{"protocol_allowed":"ftp"}"#), r#"api "shop": api_pattern_enforcement.protocol_allowed "ftp" is not one of http, https, ws, wss"#),
        row("ignored fields any type", shop(r#""servers":"x","health_check":"yes","api_memory_size":128,"server_ssl":"no""#), ""),
        row("unknown api_metadata key", shop(r#""future_field":{"a":1}"#), ""),
        row("unknown api entry key", r#"{"apis":[{"comment":"x","api_metadata":{"url":"/","hostname":"*"}}]}"#, ""),
        // --- jwt: the seed table ---
        row("jwt absent", shop(""), ""),
        row("jwt null", shop(r#""jwt":null"#), ""),
        row("jwt {}", shop(r#""jwt":{}"#), r#"api "shop": jwt is {} (no keys)"#),
        row("jwt all keys empty", jwt("", "", ""), ""),
        row("jwt missing clientid", shop(r#""jwt":{"username":"","location":""}"#), r#"api "shop": jwt is missing clientid"#),
        row("jwt missing location and username", shop(r#""jwt":{"clientid":"cid"}"#), r#"api "shop": jwt is missing location and username"#),
        row("jwt missing username", shop(r#""jwt":{"location":"qs:t","clientid":"cid"}"#), "jwt is missing username"),
        row("jwt not object", shop(r#""jwt":"h:authorization:bearer""#), r#"api "shop": jwt must be an object"#),
        row("jwt location number", shop(r#""jwt":{"location":1,"username":"","clientid":""}"#), r#"api "shop": jwt.location must be a string"#),
        row("jwt username bool", shop(r#""jwt":{"location":"qs:t","username":true,"clientid":""}"#), r#"api "shop": jwt.username must be a string"#),
        row("jwt unknown key", shop(r#""jwt":{"location":"","username":"","clientid":"","issuer":"x"}"#), ""),
        // --- jwt: cross-field rules ---
        row("jwt username equals clientid", jwt("qs:t", "sub", "sub"), r#"api "shop": jwt.username and jwt.clientid are both "sub""#),
        row("jwt username and username_header", shop( r#""username_header":"X-User","jwt":{"location":"qs:t","username":"sub","clientid":""}"#, ), r#"api "shop": username_header "x-user" and jwt.username "sub" are both set"#),
        row("jwt clientid and username_header", shop( r#""username_header":"X-User","jwt":{"location":"qs:t","username":"","clientid":"cid"}"#, ), ""),
        row("jwt username without location", jwt("", "sub", ""), r#"api "shop": jwt.username or jwt.clientid is set but jwt.location is empty"#),
        row("jwt clientid without location", jwt("", "", "cid"), "jwt.location is empty"),
        row("jwt location without claims", jwt("h:authorization:bearer", "", ""), ""),
        row("jwt seed example", jwt("h:authorization:bearer", "username", "client_id"), ""),
        // --- jwt.location syntax ---
        row("location qs", jwt("qs:access_token", "sub", ""), ""),
        row("location header", jwt("h:X-jwt-header", "sub", ""), ""),
        row("location bearer", jwt("h:Authorization:Bearer", "sub", ""), ""),
        row("location mac", jwt("h:Authorization:MAC", "sub", ""), ""),
        row("location cookie with space", jwt("h:cookie: access_token", "sub", ""), ""),
        row("location no scheme", jwt("h:authorization", "sub", ""), r#"api "shop": jwt.location "h:authorization" needs a scheme: h:Authorization:Bearer or h:Authorization:MAC"#),
        row("location empty scheme", jwt("h:Authorization:", "sub", ""), "needs a scheme"),
        row("location basic", jwt("h:Authorization:Basic", "sub", ""), r#"jwt.location "h:Authorization:Basic" uses scheme "Basic""#),
        row("location qs empty", jwt("qs:", "sub", ""), r#"jwt.location "qs:" needs a query parameter name"#),
        row("location qs blank", jwt("qs:  ", "sub", ""), "needs a query parameter name"),
        row("location h empty", jwt("h:", "sub", ""), r#"jwt.location "h:" needs a header name"#),
        row("location cookie empty", jwt("h:cookie:", "sub", ""), r#"api "shop": jwt.location "h:cookie:" needs a cookie name"#),
        row("location cookie no colon", jwt("h:cookie", "sub", ""), "needs a cookie name"),
        row("location cookie bad name", jwt("h:cookie:a b", "sub", ""), "invalid cookie name"),
        row("location unknown prefix", jwt("body:token", "sub", ""), r#"jwt.location "body:token" has unknown prefix "body""#),
        row("location no prefix", jwt("bearer", "sub", ""), r#"jwt.location "bearer" has no prefix"#),
        row("location bad header", jwt("h:x jwt", "sub", ""), r#"jwt.location "h:x jwt" has an invalid header name"#),
        row("location header with extra part", jwt("h:x-jwt:y", "sub", ""), "has an invalid header name"),
        // --- seed and tooling files, verbatim ---
        row("seed 000 root API (oauth2)", SEED_000_OAUTH, ""),
        row("seed 000 root API (key_1.4)", SEED_000_APIKEY, ""),
        row("seed 001 /rest API", SEED_001_REST, ""),
        row("tooling-written file", TOOLING_FILE, ""),
        row("ASE image root API", ASE_IMAGE_ROOT, ""),
        row("seed files together", format!( r#"{{"apis":[{{"name":"r","api_metadata":{}}},{{"api_metadata":{}}}]}}"#, api_metadata_of(SEED_000_APIKEY), api_metadata_of(SEED_001_REST) ), ""),
    ];
    for unit in ["s", "m", "h", "d", "w", "mnt", "yr"] {
        let cfg = shop(&format!(r#""cookie_idle_timeout":"200{unit}""#));
        rows.push(Row {
            name: "cookie_idle_timeout unit ok",
            config: cfg,
            expect_err: "",
        });
    }
    rows.push(row(
        "cookie_idle_timeout empty",
        shop(r#""cookie_idle_timeout":"""#),
        "",
    ));
    for bad in [
        "200",
        "m",
        "200min",
        "200M",
        "20 m",
        "-5m",
        "5.5h",
        "99999999999999999999999s",
    ] {
        let cfg = shop(&format!(r#""cookie_idle_timeout":{bad:?}"#));
        rows.push(Row {
            name: "cookie_idle_timeout bad",
            config: cfg,
            expect_err: r#"api "shop": cookie_idle_timeout"#,
        });
    }
    rows
}

/// The `api_metadata` object of a single-API file, as JSON text.
pub(super) fn api_metadata_of(file: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(file).unwrap();
    v["api_metadata"].to_string()
}
