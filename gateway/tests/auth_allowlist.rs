//! `allowlist` mode: listed ids only, fixed codes, reloads on change.

use std::path::Path;
use std::time::Duration;

use gateway::auth::{Authenticator, Decision, DenyReason, RegisterRequest};
use gateway::config::{AuthConfig, AuthMode};

fn cfg(file: &Path) -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Allowlist,
        allowlist_file: Some(file.to_owned()),
        ..AuthConfig::default()
    }
}

fn register_request(phone: &str) -> RegisterRequest {
    RegisterRequest {
        phone: phone.to_owned(),
        plate: "LSVAU2180N2183294".to_owned(),
        plate_color: 0,
        manufacturer: "M".to_owned(),
        model: "X".to_owned(),
        terminal_id: "T".to_owned(),
        province: 0,
        city: 0,
        peer: "127.0.0.1:50000".to_owned(),
    }
}

fn denied(d: Decision) -> DenyReason {
    match d {
        Decision::Deny { reason } => reason,
        other => panic!("expected a deny, got {other:?}"),
    }
}

/// Rewrites `path`, making sure the new version has a different modification time.
fn rewrite(path: &Path, text: &str) {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    loop {
        std::fs::write(path, text).unwrap();
        let after = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if after != before {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn listed_ids_are_allowed_and_others_denied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(
        &file,
        "# fleet\n013800138000\n\nLSVAU2180N2183294 # a GB/T 32960 vehicle\n",
    )
    .unwrap();
    let jt = Authenticator::new("jt808", &cfg(&file), dir.path())
        .await
        .unwrap();

    let code = match jt.register(&register_request("013800138000")).await {
        Decision::Allow { auth_code: Some(c) } => c,
        other => panic!("{other:?}"),
    };
    assert!(jt
        .authenticate("013800138000", &code, None, "p")
        .await
        .is_allowed());
    assert_eq!(
        denied(jt.authenticate("013800138000", "nope", None, "p").await),
        DenyReason::BadCode
    );

    let refused = denied(jt.register(&register_request("013899999999")).await);
    assert_eq!(refused, DenyReason::NotAllowed);
    assert_eq!(refused.as_str(), "not_allowed");
    assert_eq!(refused.jt808_register_result(), 4);
    assert_eq!(
        denied(jt.authenticate("013899999999", &code, None, "p").await),
        DenyReason::NotAllowed
    );

    let gb = Authenticator::new("gbt32960", &cfg(&file), dir.path())
        .await
        .unwrap();
    assert!(gb.login("LSVAU2180N2183294", None, "p").await.is_allowed());
    assert_eq!(
        denied(gb.login("LSVAU2180N2189999", None, "p").await),
        DenyReason::NotAllowed
    );
}

#[tokio::test]
async fn fixed_codes_work_without_registration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(&file, "013800138000,FACTORY42\n013800138001\n").unwrap();
    let jt = Authenticator::new("jt808", &cfg(&file), dir.path())
        .await
        .unwrap();

    assert_eq!(
        jt.authenticate("013800138000", "FACTORY42", None, "p")
            .await,
        Decision::Allow { auth_code: None }
    );
    assert_eq!(
        denied(
            jt.authenticate("013800138000", "FACTORY43", None, "p")
                .await
        ),
        DenyReason::BadCode
    );
    // Registering a terminal with a fixed code answers that code.
    assert_eq!(
        jt.register(&register_request("013800138000")).await,
        Decision::Allow {
            auth_code: Some("FACTORY42".to_owned())
        }
    );
    // Listed without a code and never registered: nothing to compare with.
    assert_eq!(
        denied(jt.authenticate("013800138001", "ANY", None, "p").await),
        DenyReason::NotRegistered
    );
}

#[tokio::test]
async fn a_changed_file_is_picked_up_and_a_broken_one_keeps_the_previous_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(&file, "LSVAU2180N2183294\n").unwrap();
    let gb = Authenticator::new("gbt32960", &cfg(&file), dir.path())
        .await
        .unwrap();
    assert!(!gb.login("LSVAU2180N2180001", None, "p").await.is_allowed());

    rewrite(&file, "LSVAU2180N2183294\nLSVAU2180N2180001\n");
    assert!(gb.login("LSVAU2180N2180001", None, "p").await.is_allowed());

    // A typo while editing: the previous list stays in force.
    rewrite(&file, "LSVAU2180N2183294\nnot a vin, with, commas\n");
    assert!(gb.login("LSVAU2180N2180001", None, "p").await.is_allowed());

    // Fixed: the new list applies (LSVAU2180N2180001 removed).
    rewrite(&file, "LSVAU2180N2183294\n");
    assert!(!gb.login("LSVAU2180N2180001", None, "p").await.is_allowed());
    assert!(gb.login("LSVAU2180N2183294", None, "p").await.is_allowed());

    // Removed file: the previous list stays in force.
    std::fs::remove_file(&file).unwrap();
    assert!(gb.login("LSVAU2180N2183294", None, "p").await.is_allowed());
}

#[tokio::test]
async fn a_missing_or_broken_file_at_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.txt");
    let e = Authenticator::new("jt808", &cfg(&missing), dir.path())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("absent.txt"), "{e:#}");

    let broken = dir.path().join("broken.txt");
    std::fs::write(&broken, "013800138000\n0138 00138001\n").unwrap();
    let e = Authenticator::new("jt808", &cfg(&broken), dir.path())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
}
