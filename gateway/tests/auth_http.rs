//! `http` mode against a canned local hook: allow, deny, EMQX-style answers, retries, timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::auth::{Authenticator, Decision, DenyReason, RegisterRequest};
use gateway::config::{AuthConfig, AuthMode, HttpAuthConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer: status, body, and how long to wait before answering.
struct Reply {
    status: u16,
    body: &'static str,
    delay: Duration,
}

fn ok(body: &'static str) -> Reply {
    Reply {
        status: 200,
        body,
        delay: Duration::ZERO,
    }
}

type Handler = dyn Fn(usize, &Value) -> Reply + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1:0: records each request body, answers with `handler`
/// (given the 0-based request number), then closes the connection.
struct Hook {
    url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    count: Arc<AtomicUsize>,
}

async fn hook(handler: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/vgate/auth", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let handler: Arc<Handler> = Arc::new(handler);
    let (reqs, n) = (requests.clone(), count.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (reqs, n, handler) = (reqs.clone(), n.clone(), handler.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    let Ok(read) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                assert!(head.starts_with("post /vgate/auth "), "{head}");
                assert!(head.contains("content-type: application/json"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    let Ok(read) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                }
                let body: Value =
                    serde_json::from_slice(&buf[body_start..body_start + len]).unwrap();
                let i = n.fetch_add(1, Ordering::SeqCst);
                let reply = handler(i, &body);
                reqs.lock().unwrap().push(body);
                tokio::time::sleep(reply.delay).await;
                let resp = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    reply.status,
                    reply.body.len(),
                    reply.body
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Hook {
        url,
        requests,
        count,
    }
}

fn cfg(url: &str, timeout_ms: u64, retries: u32) -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Http,
        http: HttpAuthConfig {
            url: url.to_owned(),
            timeout_ms,
            retries,
        },
        ..AuthConfig::default()
    }
}

fn register_request(phone: &str) -> RegisterRequest {
    RegisterRequest {
        phone: phone.to_owned(),
        plate: "粤B12345".to_owned(),
        plate_color: 1,
        manufacturer: "70111".to_owned(),
        model: "BSJ-GF-06".to_owned(),
        terminal_id: "T0001".to_owned(),
        province: 44,
        city: 300,
        peer: "127.0.0.1:50000".to_owned(),
    }
}

#[tokio::test]
async fn register_and_authenticate_are_asked_with_the_documented_json() {
    let h = hook(|_, req| match req["action"].as_str() {
        Some("register") => ok(r#"{"result": "allow", "auth_code": "HOOKCODE7"}"#),
        _ => ok(r#"{"result": "allow"}"#),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("jt808", &cfg(&h.url, 2000, 0), dir.path())
        .await
        .unwrap();

    assert_eq!(
        auth.register(&register_request("013800138000")).await,
        Decision::Allow {
            auth_code: Some("HOOKCODE7".to_owned())
        }
    );
    assert!(auth
        .authenticate(
            "013800138000",
            "HOOKCODE7",
            Some("860000000000001"),
            "10.0.0.1:7"
        )
        .await
        .is_allowed());
    assert!(
        auth.authenticate("013800138000", "OTHER", None, "10.0.0.1:7")
            .await
            .is_allowed(),
        "the hook decides"
    );

    let reqs = h.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0]["action"], "register");
    assert_eq!(reqs[0]["listener"], "jt808");
    assert_eq!(reqs[0]["phone"], "013800138000");
    assert_eq!(reqs[0]["plate"], "粤B12345");
    assert_eq!(reqs[0]["plate_color"], 1);
    assert_eq!(reqs[0]["province"], 44);
    assert_eq!(reqs[0]["city"], 300);
    assert_eq!(reqs[0]["terminal_id"], "T0001");
    assert_eq!(reqs[1]["action"], "authenticate");
    assert_eq!(reqs[1]["code"], "HOOKCODE7");
    assert_eq!(
        reqs[1]["known_code"], true,
        "the hook's code was stored by the gateway"
    );
    assert_eq!(reqs[1]["imei"], "860000000000001");
    assert_eq!(reqs[1]["peer"], "10.0.0.1:7");
    assert_eq!(reqs[2]["known_code"], false);
    assert_eq!(reqs[2]["imei"], Value::Null);
}

#[tokio::test]
async fn an_allow_without_a_code_gets_a_gateway_code_and_login_sends_the_vin() {
    let h = hook(|_, _| ok("")).await;
    let dir = tempfile::tempdir().unwrap();
    let jt = Authenticator::new("jt808", &cfg(&h.url, 2000, 0), dir.path())
        .await
        .unwrap();
    match jt.register(&register_request("013800138000")).await {
        Decision::Allow { auth_code: Some(c) } => assert_eq!(c.len(), 16),
        other => panic!("{other:?}"),
    }
    let gb = Authenticator::new("gbt32960", &cfg(&h.url, 2000, 0), dir.path())
        .await
        .unwrap();
    assert!(gb
        .login("LSVAU2180N2183294", Some("89860000000000000000"), "p")
        .await
        .is_allowed());
    let reqs = h.requests.lock().unwrap().clone();
    assert_eq!(reqs[1]["action"], "login");
    assert_eq!(reqs[1]["listener"], "gbt32960");
    assert_eq!(reqs[1]["vin"], "LSVAU2180N2183294");
    assert_eq!(reqs[1]["iccid"], "89860000000000000000");
}

#[tokio::test]
async fn denials_in_both_styles_and_by_status() {
    let h = hook(|i, _| match i {
        0 => ok(r#"{"result": "deny", "reason": "stolen"}"#),
        1 => ok(r#"{"code": 3}"#),
        2 => ok(r#"{"code": 0, "authcode": "EMQX1"}"#),
        _ => Reply {
            status: 403,
            body: "",
            delay: Duration::ZERO,
        },
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("jt808", &cfg(&h.url, 2000, 2), dir.path())
        .await
        .unwrap();
    let req = register_request("013800138000");

    let Decision::Deny { reason } = auth.register(&req).await else {
        panic!("expected a deny")
    };
    assert_eq!(reason, DenyReason::HookDenied("stolen".to_owned()));
    assert_eq!(reason.as_str(), "hook_denied");

    let Decision::Deny { reason } = auth.register(&req).await else {
        panic!("expected a deny")
    };
    assert_eq!(reason.jt808_register_result(), 3, "{reason}");

    assert_eq!(
        auth.register(&req).await,
        Decision::Allow {
            auth_code: Some("EMQX1".to_owned())
        }
    );

    let Decision::Deny { reason } = auth.authenticate("013800138000", "EMQX1", None, "p").await
    else {
        panic!("expected a deny")
    };
    assert_eq!(reason, DenyReason::HookDenied("http_403".to_owned()));
    assert_eq!(
        h.count.load(Ordering::SeqCst),
        4,
        "a 4xx is final, not retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let h = hook(|i, _| {
        if i < 2 {
            Reply {
                status: 500,
                body: "oops",
                delay: Duration::ZERO,
            }
        } else {
            ok(r#"{"result":"allow"}"#)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("gbt32960", &cfg(&h.url, 2000, 2), dir.path())
        .await
        .unwrap();
    assert!(auth
        .login("LSVAU2180N2183294", None, "p")
        .await
        .is_allowed());
    assert_eq!(h.count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_hook_that_times_out_after_the_retries_is_auth_unavailable() {
    let h = hook(|_, _| Reply {
        status: 200,
        body: r#"{"result":"allow"}"#,
        delay: Duration::from_millis(1500),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("gbt32960", &cfg(&h.url, 100, 1), dir.path())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let d = auth.login("LSVAU2180N2183294", None, "p").await;
    assert_eq!(
        d,
        Decision::Deny {
            reason: DenyReason::Unavailable
        }
    );
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "timed out per attempt, {:?}",
        started.elapsed()
    );
    // Both attempts reached the hook.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.count.load(Ordering::SeqCst), 2);
    assert_eq!(DenyReason::Unavailable.as_str(), "auth_unavailable");
}

#[tokio::test]
async fn a_hook_that_is_down_or_answers_garbage_is_auth_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let down = Authenticator::new(
        "jt808",
        &cfg(&format!("http://127.0.0.1:{port}/auth"), 500, 2),
        dir.path(),
    )
    .await
    .unwrap();
    assert_eq!(
        down.authenticate("013800138000", "X", None, "p").await,
        Decision::Deny {
            reason: DenyReason::Unavailable
        }
    );

    let h = hook(|_, _| ok("<html>proxy error</html>")).await;
    let garbage = Authenticator::new("jt808", &cfg(&h.url, 500, 2), dir.path())
        .await
        .unwrap();
    assert_eq!(
        garbage.register(&register_request("013800138000")).await,
        Decision::Deny {
            reason: DenyReason::Unavailable
        }
    );
    assert_eq!(
        h.count.load(Ordering::SeqCst),
        1,
        "an unusable answer is not retried"
    );
}

#[tokio::test]
async fn https_urls_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let e = Authenticator::new(
        "jt808",
        &cfg("https://tsp.example/auth", 500, 0),
        dir.path(),
    )
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("https"), "{e:#}");
}
