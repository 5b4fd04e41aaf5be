//! Table-driven tests of the byte-safe request parsers.
#![allow(clippy::type_complexity)] // row tuples are the tables

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn req_with(headers: &[(&str, &str)]) -> RequestView {
    RequestView {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RequestView::default()
    }
}

#[test]
fn percent_decoding() {
    let rows: &[(&str, bool, &str)] = &[
        ("plain", true, "plain"),
        ("a+b", true, "a b"),
        ("a+b", false, "a+b"),
        ("a%20b", true, "a b"),
        ("%2Bplus", true, "+plus"),
        ("%e2%82%ac", true, "€"),
        ("%E2%82%AC", true, "€"),
        ("100%", true, "100%"),
        ("%4", true, "%4"),
        ("%zz%41", true, "%zzA"),
        ("%%41", true, "%A"),
        ("%ff", true, "\u{fffd}"),
        ("%C3%28", true, "\u{fffd}("),
        ("é%C3%A9", true, "éé"),
        ("", true, ""),
    ];
    for (input, plus, want) in rows {
        assert_eq!(percent_decode(input, *plus), *want, "input {input:?}");
    }
}

#[test]
fn query_parameters() {
    let rows: &[(&str, &[(&str, &str)])] = &[
        ("/", &[]),
        ("/?", &[]),
        ("/p?a=1&b=2", &[("a", "1"), ("b", "2")]),
        ("/p?a=1&&b=", &[("a", "1"), ("b", "")]),
        ("/p?flag&x=1", &[("flag", ""), ("x", "1")]),
        ("/p?a=1;b=2", &[("a", "1;b=2")]),
        ("/p?a=x=y", &[("a", "x=y")]),
        ("/p?q=a+b%2Bc", &[("q", "a b+c")]),
        ("/p?na%6De=v&a+b=c", &[("name", "v"), ("a b", "c")]),
        ("/p?a=1#frag&b=2", &[("a", "1")]),
        ("/p#frag?a=1", &[]),
        ("/p?=v", &[("", "v")]),
        ("/p?a=%ZZ", &[("a", "%ZZ")]),
    ];
    for (path, want) in rows {
        let got = query_params(path);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "path {path:?}");
    }
}

#[test]
fn query_param_lookup() {
    let rows: &[(&str, &str, Option<&str>)] = &[
        // The seed's API key parameter name.
        ("/shop?key_1.4=abc123&x=1", "key_1.4", Some("abc123")),
        ("/shop?key_1%2E4=enc", "key_1.4", Some("enc")),
        ("/shop?key_1.40=no", "key_1.4", None),
        ("/shop?KEY_1.4=no", "key_1.4", None),
        // First occurrence wins.
        ("/p?k=first&k=second", "k", Some("first")),
        ("/p?k=&k=second", "k", Some("")),
        // RFC 6750 / seed example.
        (
            "/resource?access_token=mF_9.B5f-4.1JqM&p=q",
            "access_token",
            Some("mF_9.B5f-4.1JqM"),
        ),
        ("/p?a=1", "b", None),
        ("/p", "a", None),
        ("/p?a=1#b=2", "b", None),
        ("/p?%F0%9F%92%A9=poo", "💩", Some("poo")),
    ];
    for (path, name, want) in rows {
        assert_eq!(query_param(path, name).as_deref(), *want, "{path} {name}");
    }
}

#[test]
fn many_query_params() {
    let mut path = String::from("/p?");
    for i in 0..1000 {
        path.push_str(&format!("k{i}=v{i}&"));
    }
    assert_eq!(query_params(&path).len(), 1000);
    assert_eq!(query_param(&path, "k999").as_deref(), Some("v999"));
    assert_eq!(query_param(&path, "k1000"), None);
}

#[test]
fn cookies() {
    let rows: &[(&[(&str, &str)], &str, Option<&str>)] = &[
        // The seed's JWT cookie.
        (
            &[(
                "cookie",
                "access_token=eyJhbGiIsI.eyJpc3MiOiJodHRwczotcGxlL.mFrs3ZodqKP4F1cB",
            )],
            "access_token",
            Some("eyJhbGiIsI.eyJpc3MiOiJodHRwczotcGxlL.mFrs3ZodqKP4F1cB"),
        ),
        (&[("cookie", "a=1; b=2")], "b", Some("2")),
        (&[("cookie", "a=1;b=2;\tc = 3 ")], "c", Some("3")),
        (&[("cookie", "sid=\"quoted\"")], "sid", Some("quoted")),
        (&[("cookie", "sid=\"")], "sid", Some("\"")),
        (&[("cookie", "sid=a=b")], "sid", Some("a=b")),
        (&[("cookie", "sid=%41")], "sid", Some("%41")),
        (&[("cookie", "SID=x")], "sid", None),
        (&[("cookie", "sid")], "sid", None),
        (&[("cookie", "")], "sid", None),
        (&[("cookie", ";;;")], "sid", None),
        (&[("cookie", "sid=")], "sid", Some("")),
        // First wins, across headers in order.
        (&[("cookie", "sid=1; sid=2")], "sid", Some("1")),
        (&[("cookie", "a=0"), ("cookie", "sid=2")], "sid", Some("2")),
        (
            &[("cookie", "sid=1"), ("cookie", "sid=2")],
            "sid",
            Some("1"),
        ),
        (&[("x-cookie", "sid=1")], "sid", None),
        (&[("cookie", "ñ=é; sid=\u{fffd}")], "sid", Some("\u{fffd}")),
    ];
    for (headers, name, want) in rows {
        let req = req_with(headers);
        assert_eq!(
            cookie_value(&req, name).as_deref(),
            *want,
            "{headers:?} {name}"
        );
    }
}

#[test]
fn many_cookies() {
    let header: Vec<String> = (0..500).map(|i| format!("c{i}=v{i}")).collect();
    let req = req_with(&[("cookie", &header.join("; "))]);
    assert_eq!(cookie_value(&req, "c499").as_deref(), Some("v499"));
    assert_eq!(cookie_value(&req, "c500"), None);
}

#[test]
fn bearer_credentials() {
    let rows: &[(&str, Option<&str>)] = &[
        ("Bearer abc", Some("abc")),
        ("bearer abc", Some("abc")),
        ("BEARER\tabc", Some("abc")),
        ("  Bearer    abc  ", Some("abc")),
        (
            "Bearer eyJhbGIUzIiI.eyJzdiIxG4gRG9lIiwiZiOjJ9.DWPwNDZEl-g",
            Some("eyJhbGIUzIiI.eyJzdiIxG4gRG9lIiwiZiOjJ9.DWPwNDZEl-g"),
        ),
        // A b64token has no whitespace: anything after it is not part of the token.
        ("Bearer abc def", Some("abc")),
        ("Bearer abc\tdef ghi", Some("abc")),
        ("bearer  abc  def", Some("abc")),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Bearerabc", None),
        ("Basic abc", None),
        ("MAC id=\"x\"", None),
        ("", None),
        ("é", None),
    ];
    for (value, want) in rows {
        assert_eq!(bearer(value), *want, "{value:?}");
    }
}

#[test]
fn authorization_credentials() {
    let rows: &[(&str, &[&str])] = &[
        ("Bearer abc", &["Bearer abc"]),
        // Repeated headers as Envoy joins them.
        ("Basic dTpw==,Bearer abc", &["Basic dTpw==", "Bearer abc"]),
        ("Bearer 1,Bearer 2", &["Bearer 1", "Bearer 2"]),
        (" Bearer 1 , Bearer 2 ", &["Bearer 1", "Bearer 2"]),
        // MAC's parameters are not credentials, quoted commas neither.
        (
            "MAC id=\"a.b.c\", nonce=\"1,2\", mac=\"m=\",Bearer t",
            &["MAC id=\"a.b.c\", nonce=\"1,2\", mac=\"m=\"", "Bearer t"],
        ),
        (
            "MAC id = \"x\" , nonce = \"n\"",
            &["MAC id = \"x\" , nonce = \"n\""],
        ),
        (
            "MAC id=\"a\\\",b\",Basic x",
            &["MAC id=\"a\\\",b\"", "Basic x"],
        ),
        ("a.b.c,d.e.f", &["a.b.c", "d.e.f"]),
        (",, ,Bearer x,", &["Bearer x"]),
        (
            "MAC id=\"unterminated, Bearer x",
            &["MAC id=\"unterminated, Bearer x"],
        ),
        ("é,ü x", &["é", "ü x"]),
        ("", &[]),
    ];
    for (value, want) in rows {
        let got: Vec<&str> = credentials(value).collect();
        assert_eq!(got, *want, "{value:?}");
    }
}

#[test]
fn strip_bearer_prefix() {
    let rows: &[(&str, &str)] = &[
        ("Bearer a.b.c", "a.b.c"),
        (" bearer\ta.b.c ", "a.b.c"),
        ("Bearer ", ""),
        ("Bearer", ""),
        ("  a.b.c\t", "a.b.c"),
        ("Bearerx.y.z", "Bearerx.y.z"),
        ("Basic abc", "Basic abc"),
        ("", ""),
    ];
    for (value, want) in rows {
        assert_eq!(strip_bearer(value), *want, "{value:?}");
    }
}

#[test]
fn mac_ids() {
    let rows: &[(&str, Option<&str>)] = &[
        // The seed's multi-line example.
        (
            "MAC id=\"eyJhbGcI1NiI\",\n               nonce=\"272095:dp63hm5s\",\n\t\t     mac=\"PNPQW4mg43cjQfEpUs3QWub4o6xE=\"",
            Some("eyJhbGcI1NiI"),
        ),
        ("MAC id=\"a.b.c\", nonce=\"n\", mac=\"m\"", Some("a.b.c")),
        ("mac nonce=\"n\", mac=\"m=\", id=\"late\"", Some("late")),
        ("Mac id=unquoted,nonce=n", Some("unquoted")),
        ("MAC ID = \"spaced\"", Some("spaced")),
        ("MAC id=\"with\\\"escape\"", Some("with\"escape")),
        ("MAC nonce=\"id=fake\", id=\"real\"", Some("real")),
        ("MAC kid=\"x\", id=\"y\"", Some("y")),
        ("MAC id=\"first\", id=\"second\"", Some("first")),
        ("MAC id=\"\"", None),
        ("MAC id=", None),
        ("MAC id", None),
        ("MAC", None),
        ("MAC ,,, = , id", None),
        ("MAC id=\"unterminated", Some("unterminated")),
        ("MAC é=\"x\", id=\"ü\"", Some("ü")),
        ("Bearer id=\"x\"", None),
        ("MACid=\"x\"", None),
        ("", None),
    ];
    for (value, want) in rows {
        assert_eq!(mac_id(value).as_deref(), *want, "{value:?}");
    }
}

#[test]
fn addresses() {
    let rows: &[(&str, Option<&str>)] = &[
        ("1.2.3.4:5678", Some("1.2.3.4")),
        ("1.2.3.4", Some("1.2.3.4")),
        (" 1.2.3.4 ", Some("1.2.3.4")),
        ("[::1]:5678", Some("::1")),
        ("[::1]", Some("::1")),
        ("::1", Some("::1")),
        ("2001:DB8:0:0:0:0:0:1", Some("2001:db8::1")),
        ("[2001:db8::1]:443", Some("2001:db8::1")),
        ("::ffff:1.2.3.4", Some("1.2.3.4")),
        ("[::ffff:1.2.3.4]:80", Some("1.2.3.4")),
        ("1.2.3.4:", None),
        ("1.2.3.4:port", None),
        ("1.2.3.4:1234567", None),
        ("[::1]x", None),
        ("[::1", None),
        ("[1.2.3.4]:80", None),
        ("fe80::1%eth0", None),
        ("example.com:80", None),
        ("unknown", None),
        ("", None),
        ("01.2.3.4", None),
        ("💩:80", None),
    ];
    for (input, want) in rows {
        assert_eq!(ip_text(input).as_deref(), *want, "{input:?}");
    }
}

#[test]
fn forwarded_for() {
    // (headers, trusted hops, chosen address)
    let rows: &[(&[&str], u32, Option<&str>)] = &[
        (&["1.1.1.1, 2.2.2.2, 3.3.3.3"], 0, Some("1.1.1.1")),
        (&["1.1.1.1, 2.2.2.2, 3.3.3.3"], 1, Some("3.3.3.3")),
        (&["1.1.1.1, 2.2.2.2, 3.3.3.3"], 2, Some("2.2.2.2")),
        (&["1.1.1.1, 2.2.2.2, 3.3.3.3"], 3, Some("1.1.1.1")),
        (&["1.1.1.1, 2.2.2.2, 3.3.3.3"], 4, None),
        (&["1.1.1.1", "2.2.2.2,3.3.3.3"], 0, Some("1.1.1.1")),
        (&["1.1.1.1", "2.2.2.2,3.3.3.3"], 2, Some("2.2.2.2")),
        (&["unknown, 2.2.2.2"], 0, None),
        (&["1.1.1.1,"], 1, None),
        (&[""], 0, None),
        (&["  2001:db8::1 ,1.1.1.1"], 0, Some("2001:db8::1")),
        (&["[2001:db8::1]:1234"], 0, Some("2001:db8::1")),
        (&["1.1.1.1"], u32::MAX, None),
    ];
    for (values, hops, want) in rows {
        let entries = xff_entries(values.iter().copied());
        assert_eq!(
            xff_client(&entries, *hops).as_deref(),
            *want,
            "{values:?} {hops}"
        );
    }
}

#[test]
fn raw_query_and_fragment() {
    assert_eq!(raw_query("/a?b=c#d"), Some("b=c"));
    assert_eq!(raw_query("/a#?b"), None);
    assert_eq!(raw_query("?"), Some(""));
    assert_eq!(raw_query(""), None);
}

#[test]
fn first_ascii_ws_agrees_with_a_byte_scan() {
    let mut inputs: Vec<Vec<u8>> = vec![vec![], b"abc".to_vec(), b"Bearer x".to_vec()];
    let long = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln".repeat(30);
    for pos in [0, 1, 7, 8, 9, 15, 16, 63, 64, 500, long.len() - 1] {
        for ws in [b' ', b'\t', b'\n', b'\r', 0x0b, 0x0c] {
            let mut v = long.clone();
            v[pos] = ws;
            inputs.push(v);
        }
        // Bytes below 0x21 that are not whitespace, and non-ASCII ones, are skipped over.
        let mut v = long.clone();
        v[pos] = 0x01;
        inputs.push(v.clone());
        v[long.len() - 1] = b' ';
        inputs.push(v);
    }
    inputs.push("é日本\u{1F4A9} x".as_bytes().to_vec());
    inputs.push(long.clone());
    for b in &inputs {
        let want = b.iter().position(|c| c.is_ascii_whitespace());
        assert_eq!(first_ascii_ws(b), want, "{:?}", String::from_utf8_lossy(b));
    }
}

#[test]
fn ipv4_text_is_what_display_writes() {
    for ip in [
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [10, 0, 9, 100],
        [1, 20, 199, 7],
        [192, 0, 2, 10],
    ] {
        let v4 = std::net::Ipv4Addr::from(ip);
        assert_eq!(ip_text(&format!("{v4}:80")), Some(v4.to_string()));
        assert_eq!(ip_text(&v4.to_string()), Some(v4.to_string()));
    }
    for i in 0..=255u8 {
        let v4 = std::net::Ipv4Addr::new(i, 255 - i, i / 3, i % 7);
        assert_eq!(ip_text(&v4.to_string()), Some(v4.to_string()));
    }
}
