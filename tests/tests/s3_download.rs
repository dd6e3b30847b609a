//! S3 downloads against a real S3 server on 127.0.0.1 (s3s-fs, which checks
//! SigV4 signatures): a 256 MiB object over 8 connections verified against
//! its published checksum, a prefix of 2,500 objects (three list pages), an
//! object replaced mid-download, wrong secrets, missing keys, presigned URLs
//! from dlm and from boto3 through `dlm get`, and a hostile listing from a
//! test-owned server (s3s-fs cannot store such keys).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use dlm_core::{
    DigestAlgorithm, Download, DownloadOptions, ErrorKind, Event, ProtocolRegistry, TreeSummary,
};
use dlm_s3::{S3Config, StaticCredentials};
use dlm_tests::{
    S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, S3Server, StoredChecksum, dlm_command, sha256_file,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);
const MIB: u64 = 1 << 20;

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// The server's endpoint and keys; nothing from the developer's environment.
fn config(s3: &S3Server, secret: &str) -> S3Config {
    S3Config::default()
        .with_use_environment(false)
        .with_region(S3_REGION)
        .with_endpoint_url(s3.endpoint().parse().unwrap())
        .with_credentials(StaticCredentials {
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: secret.into(),
            session_token: None,
        })
}

fn registry(config: S3Config) -> ProtocolRegistry {
    let mut r = ProtocolRegistry::new();
    dlm_s3::register_with(&mut r, config).unwrap();
    r
}

async fn download(config: S3Config, url: &str, out: &Path, options: DownloadOptions) -> Download {
    dlm_tests::through::file_download(&registry(config), url, out, options).await
}

async fn tree(config: S3Config, url: &str, out: &Path, connections: u32) -> TreeSummary {
    dlm_tests::through::tree_download(&registry(config), url, out, connections).await
}

#[test]
fn a_256_mib_object_over_8_connections_is_verified_against_its_checksum() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    let big = s3.put_random_object("bkt", "data/big.bin", 256 * MIB, 1, StoredChecksum::Sha256);
    let plain = s3.put_random_object(
        "bkt",
        "data/plain.bin",
        3 * MIB + 7,
        2,
        StoredChecksum::None,
    );
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("big.bin");
        let options = DownloadOptions::default().with_connections(8);
        let done = download(
            config(&s3, S3_SECRET_KEY),
            &s3.s3_url("bkt", "data/big.bin"),
            &out,
            options.clone(),
        )
        .await
        .start()
        .wait()
        .await
        .unwrap();
        assert_eq!(done.bytes, 256 * MIB);
        assert_eq!(done.sha256().unwrap().to_hex(), big.sha256);
        // The object's full-object x-amz-checksum-sha256 was the check.
        let against = done
            .verified_against
            .expect("verified against the published checksum");
        assert_eq!(against.algorithm, DigestAlgorithm::Sha256);

        // Without a published checksum, a single-part upload's ETag (its MD5) is the check.
        let out = dir.path().join("plain.bin");
        let done = download(
            config(&s3, S3_SECRET_KEY),
            &s3.s3_url("bkt", "data/plain.bin"),
            &out,
            options,
        )
        .await
        .start()
        .wait()
        .await
        .unwrap();
        assert_eq!(sha256_file(&out).unwrap(), plain.sha256);
        assert_eq!(
            done.verified_against.unwrap().algorithm,
            DigestAlgorithm::Md5
        );
    });
}

#[test]
fn a_prefix_of_2500_objects_arrives_in_nested_folders() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    let keys: Vec<String> = (0..2500)
        .map(|i| format!("logs/d{}/s{}/k {i}.txt", i % 7, i % 3))
        .collect();
    let bodies: Vec<Vec<u8>> = (0..2500)
        .map(|i| format!("object {i}\n").repeat(i % 50 + 1).into_bytes())
        .collect();
    let objects: Vec<(&str, &[u8])> = keys
        .iter()
        .map(String::as_str)
        .zip(bodies.iter().map(Vec::as_slice))
        .collect();
    s3.put_objects("bkt", &objects);
    s3.put_object("bkt", "other/outside.txt", b"not under the prefix");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logs");
    run(async {
        let summary = tree(
            config(&s3, S3_SECRET_KEY),
            &s3.s3_url("bkt", "logs/"),
            &out,
            8,
        )
        .await;
        assert!(summary.is_complete(), "{:?}", summary.failed.first());
        assert_eq!(summary.progress.files_done, 2500);
    });
    for (key, body) in keys.iter().zip(&bodies) {
        let rel = key.strip_prefix("logs/").unwrap();
        assert_eq!(&std::fs::read(out.join(rel)).unwrap(), body, "{key}");
    }
    assert!(!dir.path().join("other").exists());
}

#[test]
fn an_object_replaced_mid_download_restarts_from_zero() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    s3.put_random_object("bkt", "moving.bin", 48 * MIB, 3, StoredChecksum::None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("moving.bin");
    run(async {
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(4 * MIB))
            // Slow enough that writing the 40 MiB replacement (and its MD5
            // sidecar) ends well before the download would.
            .with_rate_limit(Some(8 * MIB));
        let d = download(
            config(&s3, S3_SECRET_KEY),
            &s3.s3_url("bkt", "moving.bin"),
            &out,
            options,
        )
        .await;
        let mut events = d.subscribe();
        let handle = d.start();
        let mut replaced = None;
        let mut restarted = false;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            match ev {
                Event::Progress(s) if replaced.is_none() && s.downloaded_bytes >= 8 * MIB => {
                    replaced = Some(s3.put_random_object(
                        "bkt",
                        "moving.bin",
                        40 * MIB + 1,
                        4,
                        StoredChecksum::None,
                    ));
                }
                Event::Restarted { .. } => restarted = true,
                Event::Completed(_) | Event::Failed { .. } => break,
                _ => {}
            }
        }
        let done = handle.wait().await.unwrap();
        assert!(restarted, "the replaced object restarted the download");
        let replaced = replaced.expect("replaced during the download");
        assert_eq!(done.bytes, 40 * MIB + 1);
        assert_eq!(sha256_file(&out).unwrap(), replaced.sha256);
    });
}

#[test]
fn a_wrong_secret_is_an_auth_error_at_once_and_a_missing_key_is_not_found() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    s3.put_object("bkt", "k.txt", b"hello");
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let d = download(
            config(&s3, "not-the-secret"),
            &s3.s3_url("bkt", "k.txt"),
            &dir.path().join("a"),
            DownloadOptions::default(),
        )
        .await;
        let (result, events) = dlm_tests::through::with_events(d).await;
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
        assert!(!err.to_string().contains("not-the-secret"), "{err}");
        assert!(!events.is_empty(), "events were seen");
        for ev in events {
            assert!(
                !matches!(ev, Event::ChunkFailed { .. }),
                "no retries: {ev:?}"
            );
        }
        for (url, what) in [
            (s3.s3_url("bkt", "nope.txt"), "missing key"),
            (s3.s3_url("no-such-bucket", "k.txt"), "missing bucket"),
        ] {
            let err = download(
                config(&s3, S3_SECRET_KEY),
                &url,
                &dir.path().join("b"),
                DownloadOptions::default(),
            )
            .await
            .start()
            .wait()
            .await
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {err}");
        }
    });
}

#[test]
fn presigned_urls_from_dlm_and_boto3_download_with_dlm_get() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    let obj = s3.put_random_object("bkt", "shared/p.bin", 2 * MIB + 3, 5, StoredChecksum::None);
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut presign = tokio::process::Command::from(dlm_command());
        presign
            .args([
                "s3",
                "presign",
                &s3.s3_url("bkt", "shared/p.bin"),
                "--expires",
                "600",
                "--endpoint-url",
            ])
            .arg(s3.endpoint())
            .envs(s3.env())
            .kill_on_drop(true);
        let out = presign.output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let by_dlm = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(by_dlm.contains("X-Amz-Signature="), "{by_dlm}");
        let mut urls = vec![("dlm", by_dlm)];
        if s3.require_boto3() {
            urls.push((
                "boto3",
                s3.presign_with_boto3("bkt", "shared/p.bin", Duration::from_secs(600)),
            ));
        }
        for (who, url) in urls {
            // A plain https/http URL to dlm get: no S3 credentials in its environment.
            let file = dir.path().join(format!("{who}.bin"));
            let out = tokio::process::Command::from(dlm_command())
                .args(["get", &url, "--no-netrc", "--quiet", "-c", "4", "-o"])
                .arg(&file)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .kill_on_drop(true)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{who}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(sha256_file(&file).unwrap(), obj.sha256, "{who}");
        }
        // And the s3:// URL itself through the CLI, credentials from the environment.
        let file = dir.path().join("direct.bin");
        let out = tokio::process::Command::from(dlm_command())
            .args([
                "get",
                &s3.s3_url("bkt", "shared/p.bin"),
                "--quiet",
                "--endpoint-url",
            ])
            .arg(s3.endpoint())
            .arg("-o")
            .arg(&file)
            .envs(s3.env())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256_file(&file).unwrap(), obj.sha256);
    });
}

/// What a fake server answers: status line, extra header lines, body.
type Reply = (&'static str, String, Vec<u8>);

/// A loopback HTTP/1.1 server on a real socket for faults s3s-fs cannot
/// produce; `answer(method, target, header lines)` makes each reply. Serves
/// up to 64 requests, one per connection.
fn fake_s3(answer: impl Fn(&str, &str, &[String]) -> Reply + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.trim_end().to_string());
            }
            let mut parts = request_line.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, extra, body) = answer(method, target, &headers);
            let head = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = stream.write_all(&body);
            }
        }
    });
    port
}

/// Lists hostile keys for `GET /bkt?list-type=2` and serves `ok.txt`: S3
/// itself stores such keys, s3s-fs cannot.
fn hostile_listing_server() -> u16 {
    fake_s3(|_, target, _| {
        if target.contains("list-type=2") {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated>\
                <Contents><Key>../evil</Key><Size>4</Size></Contents>\
                <Contents><Key>/abs</Key><Size>4</Size></Contents>\
                <Contents><Key>a/../../evil2</Key><Size>4</Size></Contents>\
                <Contents><Key>ok.txt</Key><Size>5</Size></Contents></ListBucketResult>";
            (
                "200 OK",
                "Content-Type: application/xml\r\n".into(),
                xml.as_bytes().to_vec(),
            )
        } else if target.starts_with("/bkt/ok.txt") {
            (
                "200 OK",
                "ETag: \"5d41402abc4b2a76b9719d911017c592\"\r\n".into(),
                b"hello".to_vec(),
            )
        } else {
            ("200 OK", "ETag: \"x\"\r\n".into(), b"evil".to_vec())
        }
    })
}

#[test]
fn a_bucket_in_another_region_is_re_signed_for_it_once() {
    // Like MinIO or S3 itself: a request signed for the wrong region gets 400
    // AuthorizationHeaderMalformed naming the right one.
    let wrong_region = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = wrong_region.clone();
    let port = fake_s3(move |_, _, headers| {
        let signed_for_eu = headers.iter().any(|h| {
            h.to_ascii_lowercase().starts_with("authorization:")
                && h.contains("/eu-west-3/s3/aws4_request")
        });
        if !signed_for_eu {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if signed_for_eu {
            (
                "200 OK",
                "ETag: \"5d41402abc4b2a76b9719d911017c592\"\r\n".into(),
                b"hello".to_vec(),
            )
        } else {
            let xml = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'eu-west-3'</Message><Region>eu-west-3</Region></Error>";
            (
                "400 Bad Request",
                "Content-Type: application/xml\r\n".into(),
                xml.as_bytes().to_vec(),
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = S3Config::default()
        .with_use_environment(false)
        .with_region("us-east-1")
        .with_endpoint_url(format!("http://127.0.0.1:{port}").parse().unwrap())
        .with_credentials(StaticCredentials {
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: S3_SECRET_KEY.into(),
            session_token: None,
        });
    run(async {
        let out = dir.path().join("r.txt");
        let done = download(config, "s3://bkt/r.txt", &out, DownloadOptions::default())
            .await
            .start()
            .wait()
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello");
        assert_eq!(
            done.verified_against.unwrap().algorithm,
            DigestAlgorithm::Md5
        );
    });
    // The bodyless HEAD 400, then the one-byte GET whose error names the
    // region; every request after that is signed for eu-west-3.
    assert_eq!(
        wrong_region.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "requests signed for the wrong region"
    );
}

#[test]
fn keys_that_would_leave_the_destination_are_refused() {
    let port = hostile_listing_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a").join("out");
    let config = S3Config::default()
        .with_use_environment(false)
        .with_anonymous(true)
        .with_region(S3_REGION)
        .with_endpoint_url(format!("http://127.0.0.1:{port}").parse().unwrap());
    run(async {
        let summary = tree(config, "s3://bkt/", &out, 2).await;
        let refused: Vec<&str> = summary.refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(refused, ["../evil", "/abs", "a/../../evil2"], "{summary:?}");
        assert_eq!(std::fs::read(out.join("ok.txt")).unwrap(), b"hello");
    });
    // Nothing but the safe key landed anywhere under the temp dir, nor at /abs.
    let files: Vec<_> = dlm_tests::walk(dir.path())
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(files, [out.join("ok.txt")]);
    assert!(!std::path::Path::new("/abs").exists());
}

#[test]
fn credentials_region_and_endpoint_come_from_an_aws_profile() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("bkt");
    let obj = s3.put_object("bkt", "p.txt", b"from a profile\n");
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!("[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[work]\naws_access_key_id = {S3_ACCESS_KEY}\naws_secret_access_key = {S3_SECRET_KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile work]\nregion = {S3_REGION}\nendpoint_url = {}\n",
            s3.endpoint()
        ),
    )
    .unwrap();
    run(async {
        // By AWS_PROFILE, then by --profile: the [work] keys and endpoint, not [default]'s.
        for (i, by_flag) in [false, true].into_iter().enumerate() {
            let file = home.path().join(format!("p{i}.txt"));
            let mut cmd = tokio::process::Command::from(dlm_command());
            cmd.args(["get", &s3.s3_url("bkt", "p.txt"), "--quiet", "-o"])
                .arg(&file)
                .env("HOME", home.path())
                .env_remove("AWS_CONFIG_FILE")
                .env_remove("AWS_SHARED_CREDENTIALS_FILE")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("AWS_REGION")
                .env_remove("AWS_DEFAULT_REGION")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("AWS_ENDPOINT_URL_S3")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .kill_on_drop(true);
            if by_flag {
                cmd.args(["--profile", "work"]).env_remove("AWS_PROFILE");
            } else {
                cmd.env("AWS_PROFILE", "work");
            }
            let out = cmd.output().await.unwrap();
            assert!(
                out.status.success(),
                "profile (flag: {by_flag}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(sha256_file(&file).unwrap(), obj.sha256);
        }
    });
}

#[test]
fn a_listing_whose_continuation_tokens_alternate_fails_instead_of_looping() {
    // Every page is truncated; its token is A, B, A, B …: a service that
    // would be listed forever. The same key on every page.
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = pages.clone();
    let port = fake_s3(move |_, target, _| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !target.contains("list-type=2") {
            return ("200 OK", "ETag: \"x\"\r\n".into(), b"k".to_vec());
        }
        let token = if n.is_multiple_of(2) { "A" } else { "B" };
        let xml = format!(
            "<ListBucketResult><Name>bkt</Name><IsTruncated>true</IsTruncated>\
             <Contents><Key>k{n}</Key><Size>1</Size></Contents>\
             <NextContinuationToken>{token}</NextContinuationToken></ListBucketResult>"
        );
        (
            "200 OK",
            "Content-Type: application/xml\r\n".into(),
            xml.into_bytes(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = S3Config::default()
        .with_use_environment(false)
        .with_anonymous(true)
        .with_region(S3_REGION)
        .with_endpoint_url(format!("http://127.0.0.1:{port}").parse().unwrap());
    run(async {
        let summary = tree(config, "s3://bkt/", &dir.path().join("out"), 1).await;
        let errors: Vec<String> = summary
            .listing_errors
            .iter()
            .map(|e| {
                assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
                e.to_string()
            })
            .collect();
        assert!(
            errors.iter().any(|e| e.contains("sent a second time")),
            "{errors:?}"
        );
    });
}

#[test]
fn a_region_from_a_response_that_is_no_region_name_is_a_protocol_error() {
    for (status, extra, body) in [
        // The header names a host, not a region.
        (
            "301 Moved Permanently",
            "x-amz-bucket-region: evil.example/x?\r\n",
            String::new(),
        ),
        // The error document's Region does.
        (
            "400 Bad Request",
            "Content-Type: application/xml\r\n",
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>wrong region</Message>\
             <Region>a b.example</Region></Error>"
                .to_string(),
        ),
    ] {
        let port = fake_s3(move |_, _, _| (status, extra.to_string(), body.clone().into_bytes()));
        let dir = tempfile::tempdir().unwrap();
        let config = S3Config::default()
            .with_use_environment(false)
            .with_region("us-east-1")
            .with_endpoint_url(format!("http://127.0.0.1:{port}").parse().unwrap())
            .with_credentials(StaticCredentials {
                access_key_id: S3_ACCESS_KEY.into(),
                secret_access_key: S3_SECRET_KEY.into(),
                session_token: None,
            });
        run(async {
            let out = dir.path().join("r.txt");
            let e = download(config, "s3://bkt/r.txt", &out, DownloadOptions::default())
                .await
                .start()
                .wait()
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{status}: {e}");
            assert!(!e.is_retryable(), "{status}: {e}");
            assert!(e.to_string().contains("not a region name"), "{status}: {e}");
        });
    }
}
