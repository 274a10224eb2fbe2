//! Auth codes never reach the logs, while the decisions themselves do.

use std::io::Write;
use std::sync::{Arc, Mutex};

use gateway::auth::{Authenticator, Decision, RegisterRequest};
use gateway::config::{AuthConfig, AuthMode};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn codes_are_redacted_in_logs() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(&file, "013800138000\n013800138001,FIXEDSECRET99\n").unwrap();
    let req = RegisterRequest {
        phone: "013800138000".to_owned(),
        plate: "P".to_owned(),
        plate_color: 1,
        manufacturer: "M".to_owned(),
        model: "X".to_owned(),
        terminal_id: "T".to_owned(),
        province: 44,
        city: 300,
        peer: "127.0.0.1:50000".to_owned(),
    };

    let open = Authenticator::new("jt808", &AuthConfig::default(), &dir.path().join("open"))
        .await
        .unwrap();
    let Decision::Allow {
        auth_code: Some(issued),
    } = open.register(&req).await
    else {
        panic!("expected a code")
    };
    assert!(open
        .authenticate("013800138000", &issued, None, "p")
        .await
        .is_allowed());
    assert!(!open
        .authenticate("013800138000", "WRONGSECRET77", None, "p")
        .await
        .is_allowed());
    assert!(open
        .authenticate("013800138005", "TOFUSECRET55", None, "p")
        .await
        .is_allowed());

    let listed = AuthConfig {
        mode: AuthMode::Allowlist,
        allowlist_file: Some(file),
        ..AuthConfig::default()
    };
    let allow = Authenticator::new("jt808", &listed, &dir.path().join("allow"))
        .await
        .unwrap();
    assert!(allow
        .authenticate("013800138001", "FIXEDSECRET99", None, "p")
        .await
        .is_allowed());
    assert!(allow
        .register(&RegisterRequest {
            phone: "013800138001".to_owned(),
            ..req.clone()
        })
        .await
        .is_allowed());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("jt808 listener is open: any terminal may register"),
        "{text}"
    );
    assert!(
        text.contains("auth decision")
            && text.contains("013800138000")
            && text.contains("redacted"),
        "{text}"
    );
    for secret in [
        issued.as_str(),
        "WRONGSECRET77",
        "TOFUSECRET55",
        "FIXEDSECRET99",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the logs:\n{text}"
        );
    }
}
