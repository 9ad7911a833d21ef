//! Authentication and authorisation over real HTTP: accounts and sessions, CSRF,
//! throttled sign-in, the trusted proxy header, and every write endpoint refusing
//! anything short of the right credentials.

mod support;

use support::{ALICE_PASSWORD, TestApp};

async fn sign_in(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/session", app.base))
        .header("content-type", "application/json")
        .body(serde_json::json!({"name": name, "password": password}).to_string())
        .send()
        .await
        .unwrap()
}

/// Every endpoint that changes something, with a body it would accept.
fn writes() -> Vec<(&'static str, &'static str, &'static str, String)> {
    vec![
        ("POST", "/api/v1/ingest/calls", "application/x-ndjson",
         r#"{"ts": 1790000100, "src": "web-1", "dst": "db-1", "requests": 10, "errors": 0, "latency_ms_sum": 50}"#.into()),
        ("POST", "/api/v1/ingest/activity", "application/x-ndjson", r#"{"ts": 1790000100, "value": 5}"#.into()),
        ("POST", "/api/v1/changes", "application/json",
         r#"{"id": 1, "ts": 1790000100, "author": "x", "clusters": ["web-1"], "description": "d"}"#.into()),
        ("POST", "/api/v1/analysis/run", "application/json", r#"{"from": 1790000100}"#.into()),
        ("POST", "/api/v1/topology/reload", "application/json", "{}".into()),
        ("POST", "/api/v1/marks", "application/json",
         r#"{"kind": "incident", "tick": 1790000100, "graph": true, "description": "x"}"#.into()),
        ("PATCH", "/api/v1/marks/1", "application/json", r#"{"version": 1, "close": true}"#.into()),
        ("DELETE", "/api/v1/session", "application/json", String::new()),
    ]
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    media: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let url = format!("{}{path}", app.base);
    let mut req = match method {
        "POST" => app.client.post(url),
        "DELETE" => app.client.delete(url),
        "PATCH" => app.client.patch(url),
        _ => unreachable!(),
    }
    .header("content-type", media)
    .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn every_write_endpoint_refuses_anything_short_of_the_right_credentials() {
    let app = TestApp::start().await;
    let alice = app.sign_in("alice").await;
    let viola = app.sign_in("viola").await;
    for (method, path, media, body) in writes() {
        let op = format!("{method} {path}");
        let (status, text) = send(&app, method, path, media, &body, &[]).await;
        assert_eq!(status, 401, "{op} without credentials: {text}");
        let (status, text) = send(
            &app,
            method,
            path,
            media,
            &body,
            &[("authorization", "Bearer epi_wrong")],
        )
        .await;
        assert_eq!(status, 401, "{op} with a wrong token: {text}");
        let read = format!("Bearer {}", app.read_token);
        let (status, text) = send(
            &app,
            method,
            path,
            media,
            &body,
            &[("authorization", &read)],
        )
        .await;
        assert!(
            status == 403 || (path == "/api/v1/session" && status == 401),
            "{op} with a read-only token: {status} {text}"
        );
        let (status, text) = send(
            &app,
            method,
            path,
            media,
            &body,
            &[("cookie", &alice.cookie)],
        )
        .await;
        assert_eq!(status, 403, "{op} with a session but no CSRF token: {text}");
        assert!(text.contains("CSRF"), "{text}");
        let (status, text) = send(
            &app,
            method,
            path,
            media,
            &body,
            &[("cookie", &alice.cookie), ("x-csrf-token", "not-the-token")],
        )
        .await;
        assert_eq!(status, 403, "{op} with a wrong CSRF token: {text}");
        // A read-only person is refused with the token, for lack of the scope.
        let (status, text) = send(
            &app,
            method,
            path,
            media,
            &body,
            &[("cookie", &viola.cookie), ("x-csrf-token", &viola.csrf)],
        )
        .await;
        if path != "/api/v1/session" {
            assert_eq!(status, 403, "{op} as a read-only user: {text}");
            assert!(text.contains("lacks the"), "{text}");
        }
    }
    // Reporting presence needs someone signed in, and the CSRF token with a cookie
    // (viola signed out above, through the last write: sign in again).
    let viola = app.sign_in("viola").await;
    let report = r#"{"edge": "web>db"}"#;
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/presence",
        "application/json",
        report,
        &[],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/presence",
        "application/json",
        report,
        &[("cookie", &viola.cookie)],
    )
    .await;
    assert_eq!(status, 403);
    let (status, text) = send(
        &app,
        "POST",
        "/api/v1/presence",
        "application/json",
        report,
        &[("cookie", &viola.cookie), ("x-csrf-token", &viola.csrf)],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("Viola Reader") && text.contains("web>db"),
        "{text}"
    );
    // Nothing refused reached the store.
    let topo = app.get_json("/api/v1/topology").await;
    assert_eq!(topo["clusters"].as_array().unwrap().len(), 0, "{topo}");
    assert_eq!(
        app.get_json("/api/v1/changes?from=1789990000&to=1790010000")
            .await,
        serde_json::json!([])
    );
    // With the session and its CSRF token, alice's write goes through.
    let (status, text) = send(
        &app,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("cookie", &alice.cookie), ("x-csrf-token", &alice.csrf)],
    )
    .await;
    assert_eq!(
        status, 400,
        "past authentication, the reload says what is missing: {text}"
    );
    assert!(text.contains("no topology file"), "{text}");
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let app = TestApp::start().await;
    for (name, password) in [("alice", "wrong password"), ("nobody", ALICE_PASSWORD)] {
        let res = sign_in(&app, name, password).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("set-cookie").is_none());
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "wrong name or password");
    }
    let res = sign_in(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("epicenter_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["name"], "alice");
    assert_eq!(body["display_name"], "Alice Martin");
    assert_eq!(body["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(body["via"], "session");
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert!(csrf.len() >= 32);
    assert!(!body.to_string().contains(ALICE_PASSWORD));
    let cookie = set.split(';').next().unwrap().to_string();
    let me = |cookie: String| {
        let c = app
            .client
            .get(format!("{}/api/v1/session", app.base))
            .header("cookie", cookie);
        async move { c.send().await.unwrap() }
    };
    let res = me(cookie.clone()).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["csrf_token"].as_str()),
        (Some("alice"), Some(csrf.as_str()))
    );
    // A token says who it is, without a CSRF token.
    let res = app
        .client
        .get(format!("{}/api/v1/session", app.base))
        .bearer_auth(&app.write_token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["via"].as_str()),
        (Some("operator"), Some("token"))
    );
    assert!(body.get("csrf_token").is_none());
    assert_eq!(me("epicenter_session=forged".into()).await.status(), 401);
    // Signing out ends the session and clears the cookie.
    let (status, _) = send(
        &app,
        "DELETE",
        "/api/v1/session",
        "application/json",
        "",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(me(cookie.clone()).await.status(), 401);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(status, 401, "the ended session cannot write");
}

/// Signs in as `name` from the loopback address `from` (127.0.0.0/8 is all this
/// machine's, so each is a different client address to the server).
async fn sign_in_from(app: &TestApp, from: &str, name: &str, password: &str) -> u16 {
    post_sign_in(
        app.base.clone(),
        from.parse().unwrap(),
        name.into(),
        password.into(),
    )
    .await
}

async fn post_sign_in(base: String, from: std::net::IpAddr, name: String, password: String) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    client
        .post(format!("{base}/api/v1/session"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"name": name, "password": password}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address_and_account_never_per_account_alone() {
    let app = TestApp::start_with(None, |c| {
        c.auth.login_failures = 3;
        c.auth.login_failures_per_address = 5;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(sign_in(&app, "alice", "guess").await.status(), 401);
    }
    // From that address, even the right password waits.
    let res = sign_in(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let wait: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many failed sign-ins")
    );
    // Whoever failed on purpose did not lock alice out: from another address the right
    // password signs in at once.
    assert_eq!(
        sign_in_from(&app, "127.0.0.2", "alice", ALICE_PASSWORD).await,
        200
    );
    // The first address may still sign in to another account.
    assert_eq!(sign_in(&app, "viola", ALICE_PASSWORD).await.status(), 200);
    // One address failing across accounts hits the address limit (5).
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        assert_eq!(sign_in_from(&app, "127.0.0.3", user, "guess").await, 401);
    }
    assert_eq!(
        sign_in_from(&app, "127.0.0.3", "viola", ALICE_PASSWORD).await,
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_get_no_more_tries_than_the_limit() {
    let app = TestApp::start_with(None, |c| c.auth.login_failures = 3).await;
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..12 {
        tries.spawn(post_sign_in(
            app.base.clone(),
            "127.0.0.4".parse().unwrap(),
            "alice".into(),
            "guess".into(),
        ));
    }
    let mut statuses = tries.join_all().await;
    statuses.sort_unstable();
    // Password checks take a while: without counting each attempt before checking
    // its password, all twelve would have been checked.
    assert_eq!(statuses, [[401; 3].as_slice(), &[429; 9]].concat());
}

#[tokio::test]
async fn a_proxy_header_is_believed_only_from_a_trusted_address() {
    let trusting = TestApp::start_with(None, |c| {
        c.auth.proxy_header = Some("X-Remote-User".into());
        c.auth.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let res = trusting
        .client
        .get(format!("{}/api/v1/session", trusting.base))
        .header("x-remote-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["via"].as_str()),
        (Some("alice"), Some("proxy"))
    );
    assert_eq!(body["display_name"], "Alice Martin");
    // A person the proxy vouches for may write (proxy_scopes for unknown accounts), but
    // the browser sends the proxy's sign-in by itself: a write needs the CSRF token.
    let (status, text) = send(
        &trusting,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("x-remote-user", "carol")],
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("CSRF"), "{text}");
    let carol: serde_json::Value = trusting
        .client
        .get(format!("{}/api/v1/session", trusting.base))
        .header("x-remote-user", "carol")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = carol["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64);
    let alice_csrf = body["csrf_token"].as_str().unwrap();
    assert_ne!(csrf, alice_csrf, "each user has a token of their own");
    let (status, text) = send(
        &trusting,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("x-remote-user", "carol"), ("x-csrf-token", alice_csrf)],
    )
    .await;
    assert_eq!(status, 403, "another user's token does not do: {text}");
    let (status, text) = send(
        &trusting,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("x-remote-user", "carol"), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("no topology file"), "{text}");
    // Nor does a body a plain form could send.
    let (status, text) = send(
        &trusting,
        "POST",
        "/api/v1/topology/reload",
        "application/x-www-form-urlencoded",
        "a=b",
        &[("x-remote-user", "carol"), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(status, 415, "{text}");
    // Behind the proxy, sign-ins are throttled per forwarded client address.
    let from = |addr: &'static str, password: &'static str| {
        trusting
            .client
            .post(format!("{}/api/v1/session", trusting.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("203.0.113.9, {addr}"))
            .body(serde_json::json!({"name": "viola", "password": password}).to_string())
            .send()
    };
    for _ in 0..5 {
        assert_eq!(from("198.51.100.7", "guess").await.unwrap().status(), 401);
    }
    assert_eq!(
        from("198.51.100.7", ALICE_PASSWORD).await.unwrap().status(),
        429
    );
    assert_eq!(
        from("198.51.100.8", ALICE_PASSWORD).await.unwrap().status(),
        200
    );
    // Behind a TLS-terminating trusted proxy the session cookie is Secure.
    let res = trusting
        .client
        .post(format!("{}/api/v1/session", trusting.base))
        .header("content-type", "application/json")
        .header("x-forwarded-proto", "https")
        .body(serde_json::json!({"name": "alice", "password": ALICE_PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    let wary = TestApp::start_with(None, |c| {
        c.auth.proxy_header = Some("X-Remote-User".into());
        c.auth.trusted_proxies = vec!["10.1.2.3".parse().unwrap()];
    })
    .await;
    let res = wary
        .client
        .get(format!("{}/api/v1/session", wary.base))
        .header("x-remote-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "a header from an untrusted address is ignored"
    );
    let (status, _) = send(
        &wary,
        "POST",
        "/api/v1/topology/reload",
        "application/json",
        "{}",
        &[("x-remote-user", "alice"), ("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(status, 401);
}
