//! `open` mode: anyone registers, issued codes authenticate and survive a restart.

use gateway::auth::{Authenticator, Decision, DenyReason, RegisterRequest};
use gateway::config::AuthConfig;

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

fn issued(d: Decision) -> String {
    match d {
        Decision::Allow { auth_code: Some(c) } => c,
        other => panic!("expected an allow with a code, got {other:?}"),
    }
}

#[tokio::test]
async fn register_issues_a_code_that_authenticates_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("jt808", &AuthConfig::default(), dir.path())
        .await
        .unwrap();
    let code = issued(auth.register(&register_request("013800138000")).await);
    assert!(code.len() >= 8, "{code}");
    assert!(auth
        .authenticate("013800138000", &code, None, "127.0.0.1:1")
        .await
        .is_allowed());
    assert_eq!(
        auth.authenticate("013800138000", "wrong", None, "127.0.0.1:1")
            .await,
        Decision::Deny {
            reason: DenyReason::BadCode
        }
    );
    // Registering again (a lost 0x8100) hands out the same code.
    assert_eq!(
        issued(auth.register(&register_request("013800138000")).await),
        code
    );
    // Another terminal gets another code.
    assert_ne!(
        issued(auth.register(&register_request("013800138001")).await),
        code
    );

    drop(auth);
    let restarted = Authenticator::new("jt808", &AuthConfig::default(), dir.path())
        .await
        .unwrap();
    assert!(restarted
        .authenticate("013800138000", &code, None, "127.0.0.1:2")
        .await
        .is_allowed());
    assert!(!restarted
        .authenticate("013800138000", "wrong", None, "127.0.0.1:2")
        .await
        .is_allowed());
}

#[tokio::test]
async fn an_unregistered_terminal_is_trusted_on_first_use_then_held_to_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new("jt808", &AuthConfig::default(), dir.path())
        .await
        .unwrap();
    assert!(auth
        .authenticate("013800138009", "OLDPLATFORM1", Some("860000000000001"), "p")
        .await
        .is_allowed());
    assert_eq!(
        auth.authenticate("013800138009", "SOMETHINGELSE", None, "p")
            .await,
        Decision::Deny {
            reason: DenyReason::BadCode
        }
    );
    // Registration recovers a terminal that lost its code: it receives the kept one.
    assert_eq!(
        issued(auth.register(&register_request("013800138009")).await),
        "OLDPLATFORM1"
    );
}

#[tokio::test]
async fn gbt32960_login_is_allowed_and_codes_are_per_listener() {
    let dir = tempfile::tempdir().unwrap();
    let gb = Authenticator::new("gbt32960", &AuthConfig::default(), dir.path())
        .await
        .unwrap();
    assert_eq!(
        gb.login("LSVAU2180N2183294", Some("89860000000000000000"), "p")
            .await,
        Decision::Allow { auth_code: None }
    );
    let jt = Authenticator::new("jt808", &AuthConfig::default(), dir.path())
        .await
        .unwrap();
    let code = issued(jt.register(&register_request("013800138000")).await);
    // Issued codes are journaled (auth-codes-<listener>.json.log) until the next start folds
    // them into the snapshot.
    assert!(dir.path().join("auth-codes-jt808.json.log").exists());
    assert!(!dir.path().join("auth-codes-gbt32960.json.log").exists());
    // The file never holds anything but the codes it should: the JSON names the phone.
    let text = std::fs::read_to_string(dir.path().join("auth-codes-jt808.json.log")).unwrap();
    assert!(text.contains("013800138000") && text.contains(&code));
}
