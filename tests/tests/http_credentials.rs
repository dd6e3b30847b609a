//! Credentials stay with their origin, as curl keeps them without
//! `--location-trusted`: a download from nginx that answers 302 to another
//! origin (its HTTPS port) sends `-H 'Authorization: …'`, `-H 'Cookie: …'`,
//! URL userinfo and a netrc `default` login to the first origin only, on the
//! probe and on every ranged request; `--location-trusted` sends them on.
//! An https → http redirect is refused unless `--allow-insecure-redirect`.

use std::time::Duration;

use dlm_tests::{Nginx, NginxOptions, dlm_command, sha256_file, write_random_file};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn dlm(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        let mut cmd = tokio::process::Command::from(dlm_command());
        cmd.args(args).kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().await.unwrap()
    })
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "c.bin", 6 << 20, 41).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "default login nobody password netrc-secret\n").unwrap();
    let url = nginx.http_url("/xredirect/c.bin");
    let https_port = nginx.https_port();
    let ca = path(nginx.ca_pem()).to_string();
    let run = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "get",
            &url,
            "-c",
            "4",
            "--quiet",
            "--ca-file",
            &ca,
            "-H",
            "Authorization: Bearer header-secret",
            "-H",
            "Cookie: session=cookie-secret",
            "-o",
            path(&out),
        ];
        args.extend_from_slice(extra);
        let r = dlm(&args, &[("NETRC", path(&netrc))]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(sha256_file(&out).unwrap(), sha);
    };

    run("plain.bin", &[]);
    let at_target: Vec<_> = nginx
        .credentials_log()
        .into_iter()
        .filter(|e| e.port == https_port)
        .collect();
    assert!(
        at_target.len() >= 2,
        "probe and ranges at the target: {at_target:?}"
    );
    for e in &at_target {
        assert_eq!(
            e.authorization, None,
            "Authorization crossed origins: {e:?}"
        );
        assert_eq!(e.cookie, None, "Cookie crossed origins: {e:?}");
    }
    // The first origin got them, on the request that redirected.
    assert!(
        nginx
            .credentials_log()
            .iter()
            .any(|e| e.uri.starts_with("/xredirect/") && e.cookie.is_some()),
        "the first origin got the cookie"
    );

    // --location-trusted: the user says the other origin may have them.
    let before = nginx.credentials_log().len();
    run("trusted.bin", &["--location-trusted"]);
    let trusted: Vec<_> = nginx.credentials_log()[before..]
        .iter()
        .filter(|e| e.port == https_port)
        .cloned()
        .collect();
    assert!(!trusted.is_empty());
    for e in &trusted {
        assert_eq!(e.cookie.as_deref(), Some("session=cookie-secret"), "{e:?}");
        assert!(e.authorization.is_some(), "{e:?}");
    }
}

#[test]
fn an_https_to_http_redirect_is_refused_unless_allowed() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "d.bin", 1 << 20, 42).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.bin");
    let url = nginx.https_url("/downgrade/d.bin");
    let ca = path(nginx.ca_pem()).to_string();
    let args = [
        "get",
        &url,
        "--quiet",
        "--no-netrc",
        "--ca-file",
        &ca,
        "-o",
        path(&out),
    ];
    let r = dlm(&args, &[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--allow-insecure-redirect"), "{stderr}");
    assert!(!out.exists());
    assert!(
        nginx.requests("/d.bin").is_empty(),
        "nothing was fetched over plain HTTP"
    );
    let mut allowed = args.to_vec();
    allowed.push("--allow-insecure-redirect");
    let r = dlm(&allowed, &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(sha256_file(&out).unwrap(), sha);
}
