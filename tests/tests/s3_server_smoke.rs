//! Checks the S3 test server (s3s-fs, `dlm_tests::S3Server`) with curl and boto3 only: signed GETs and HEADs,
//! ranges, a wrong secret, presigned URLs, objects written straight to disk against objects uploaded through
//! the API, and ListObjectsV2 paging. Every curl run is bounded by `--max-time`, every boto3 run by the helper.

use std::process::{Command, Stdio};

use dlm_tests::{Boto3Upload, S3_SECRET_KEY, S3Server, StoredChecksum, which, write_random_file};
use sha2::{Digest, Sha256};

/// Bounds each curl run (a hang fails instead of blocking CI; nothing here measures speed).
const CURL_MAX_TIME_SECS: &str = "30";

const SIZE: u64 = (1 << 20) + 17;

/// One curl exchange: the status, the headers (names lowercased) and the body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `curl -s -i ARGS URL` and splits its output into status, headers and body.
fn curl(args: &[String], url: &str) -> Reply {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", CURL_MAX_TIME_SECS])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?} {url}: {}", out.status);
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("curl -i output has a header block");
    let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: out.stdout[split + 4..].to_vec(),
    }
}

fn signed(s3: &S3Server, extra: &[&str]) -> Vec<String> {
    let mut args = s3.curl_sigv4_args(S3_SECRET_KEY);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// s3s-fs with bucket `bkt`, or `None` (skipped) when s3s-fs or curl is missing.
fn server() -> Option<S3Server> {
    if which("curl").is_none() {
        return dlm_tests::missing_peer("curl");
    }
    let s3 = S3Server::start()?;
    s3.create_bucket("bkt");
    Some(s3)
}

#[test]
fn signed_get_head_and_range_work_and_a_wrong_secret_is_refused() {
    let Some(s3) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let digest = write_random_file(dir.path(), "f.bin", SIZE, 5).unwrap();
    let bytes = std::fs::read(dir.path().join("f.bin")).unwrap();
    let stored = s3.put_file(
        "bkt",
        "dir/f.bin",
        &dir.path().join("f.bin"),
        StoredChecksum::None,
    );
    assert_eq!(stored.sha256, digest);
    assert_eq!(stored.size_bytes, SIZE);
    let url = s3.http_url("bkt", "dir/f.bin");

    let full = curl(&signed(&s3, &[]), &url);
    assert_eq!(full.status, 200, "{}", full.text());
    assert_eq!(hex::encode(Sha256::digest(&full.body)), digest);
    assert_eq!(full.header("etag"), Some(stored.etag.as_str()));

    let head = curl(&signed(&s3, &["-I"]), &url);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(SIZE.to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(stored.etag.as_str()));
    assert!(head.header("last-modified").is_some());
    assert_eq!(head.header("x-amz-checksum-sha256"), None);

    let part = curl(&signed(&s3, &["-H", "Range: bytes=1000-1999"]), &url);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &bytes[1000..2000]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{SIZE}").as_str())
    );

    let refused = curl(&s3.curl_sigv4_args("not-the-secret"), &url);
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .text()
            .contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        refused.text()
    );
    let anonymous = curl(&[], &url);
    assert_eq!(anonymous.status, 403);

    let missing = curl(&signed(&s3, &[]), &s3.http_url("bkt", "nope"));
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("<Code>NoSuchKey</Code>"));
}

#[test]
fn a_boto3_presigned_url_downloads_with_plain_curl() {
    let Some(s3) = server() else { return };
    if !s3.require_boto3() {
        return;
    }
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    s3.put_object("bkt", "a key+with spaces.bin", &data);
    let url = s3.presign_with_boto3(
        "bkt",
        "a key+with spaces.bin",
        std::time::Duration::from_secs(600),
    );
    assert!(url.starts_with(&s3.endpoint()), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");

    let full = curl(&[], &url);
    assert_eq!(full.status, 200, "{}", full.text());
    assert_eq!(full.body, data);
    let part = curl(&["-H".to_owned(), "Range: bytes=-10".to_owned()], &url);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &data[data.len() - 10..]);

    let tampered = url.replace("X-Amz-Expires=600", "X-Amz-Expires=601");
    assert_eq!(curl(&[], &tampered).status, 403);
}

#[test]
fn direct_writes_record_etag_and_checksum_like_a_put() {
    let Some(s3) = server() else { return };
    let url = s3.http_url("bkt", "obj");
    let first = s3.put_object_with("bkt", "obj", b"first version", StoredChecksum::Sha256);
    assert_eq!(
        first.etag,
        format!("\"{}\"", "e9e2371570daec2e7b70faa4f0f1eab8")
    );
    let head = curl(&signed(&s3, &["-I"]), &url);
    assert_eq!(head.header("etag"), Some(first.etag.as_str()));
    assert_eq!(
        head.header("x-amz-checksum-sha256"),
        first.checksum_sha256.as_deref()
    );

    // Replacing through put_object changes what HEAD reports; writing the file alone keeps the old ETag.
    let second = s3.put_object("bkt", "obj", b"second, longer version");
    assert_ne!(second.etag, first.etag);
    let head = curl(&signed(&s3, &["-I"]), &url);
    assert_eq!(head.header("etag"), Some(second.etag.as_str()));
    assert_eq!(head.header("content-length"), Some("22"));
    assert_eq!(head.header("x-amz-checksum-sha256"), None);
    std::fs::write(s3.object_path("bkt", "obj"), b"third").unwrap();
    let head = curl(&signed(&s3, &["-I"]), &url);
    assert_eq!(head.header("content-length"), Some("5"));
    assert_eq!(head.header("etag"), Some(second.etag.as_str()));
}

#[test]
fn boto3_uploads_get_the_etags_the_server_computes() {
    let Some(s3) = server() else { return };
    if !s3.require_boto3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let digest = write_random_file(dir.path(), "f.bin", 6 << 20, 11).unwrap();
    let direct = s3.put_file("bkt", "direct", &path, StoredChecksum::Sha256);
    let upload = |key: &str, sha256, part_size_bytes| Boto3Upload {
        bucket: "bkt".to_owned(),
        key: key.to_owned(),
        path: path.clone(),
        sha256,
        part_size_bytes,
    };
    let etags = s3.upload_with_boto3(&[
        upload("single", true, None),
        upload("multi", false, Some(5 << 20)),
    ]);
    assert_eq!(etags[0], direct.etag);
    assert!(
        etags[1].starts_with('"') && etags[1].ends_with("-2\""),
        "{}",
        etags[1]
    );

    let single = curl(&signed(&s3, &["-I"]), &s3.http_url("bkt", "single"));
    assert_eq!(single.header("etag"), Some(direct.etag.as_str()));
    assert_eq!(
        single.header("x-amz-checksum-sha256"),
        direct.checksum_sha256.as_deref()
    );
    let multi = curl(&signed(&s3, &[]), &s3.http_url("bkt", "multi"));
    assert_eq!(multi.header("etag"), Some(etags[1].as_str()));
    assert_eq!(hex::encode(Sha256::digest(&multi.body)), digest);
}

#[test]
fn list_objects_v2_pages_at_max_keys() {
    let Some(s3) = server() else { return };
    let keys: Vec<String> = (0..1001).map(|i| format!("k/{i:04}")).collect();
    let objects: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), k.as_bytes())).collect();
    let stored = s3.put_objects("bkt", &objects);
    assert_eq!(stored.len(), 1001);
    assert_eq!(stored[7].size_bytes, 6);

    // curl 7.88 signs the query in the order written: keep it sorted by name.
    let page = curl(
        &signed(&s3, &[]),
        &format!("{}/bkt?list-type=2", s3.endpoint()),
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let xml = page.text();
    assert_eq!(xml.matches("<Key>").count(), 1000);
    assert!(xml.contains("<IsTruncated>true</IsTruncated>"));
    assert!(xml.contains("<NextContinuationToken>k/0999</NextContinuationToken>"));

    let next = curl(
        &signed(&s3, &[]),
        &format!(
            "{}/bkt?continuation-token=k%2F0999&list-type=2",
            s3.endpoint()
        ),
    );
    assert_eq!(next.status, 200, "{}", next.text());
    let xml = next.text();
    assert!(xml.contains("<Key>k/1000</Key>"), "{xml}");
    assert_eq!(xml.matches("<Key>").count(), 1);
    assert!(xml.contains("<IsTruncated>false</IsTruncated>"));
}
