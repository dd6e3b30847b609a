//! An S3 server with real SigV4 checking on 127.0.0.1: s3s-fs 0.14.1, the S3 API over a directory, with one
//! fixed test key pair ([`S3_ACCESS_KEY`], [`S3_SECRET_KEY`]), rooted in a temp dir and stopped by PID on drop.
//! `scripts/test` installs it (`cargo install s3s-fs@0.14.1 --features binary --locked --root
//! /opt/dlm-peers/s3s-fs`); [`S3Server::start`] looks on `PATH`, then in `/opt/dlm-peers/s3s-fs/bin`, and skips
//! when it is in neither. boto3 (from PyPI, also installed by `scripts/test`) makes presigned URLs and uploads
//! through the real API ([`S3Server::presign_with_boto3`], [`S3Server::upload_with_boto3`], both running
//! `tests/peers/s3_fixtures.py`).
//!
//! Buckets are directories under [`S3Server::root`] and objects are plain files at `root/BUCKET/KEY`, so
//! fixtures are written straight to disk ([`S3Server::put_object`] and friends), which is much faster than
//! uploading. s3s-fs keeps an object's ETag (and any checksum sent with its upload) in a sidecar file,
//! `root/.bucket-B64(BUCKET).object-B64(KEY).internal.json` (base64url, no padding); the `put_*` methods write
//! that sidecar too, exactly as a PutObject would, so HEAD and GET answer at once with the MD5 ETag. Writing a
//! file at [`S3Server::object_path`] yourself leaves the old sidecar in place: the server then serves the new
//! bytes and length with the **old ETag**. To replace an object (say, mid-download), call `put_object` again: it
//! renames the new file into place, then the new sidecar (two renames, so a request in between can see the new
//! bytes with the old ETag; a GET already streaming keeps reading the old file).
//!
//! # What s3s-fs 0.14.1 does (checked with curl 7.88 `--aws-sigv4` and boto3 1.43)
//!
//! - **Addressing**: path-style only (`http://127.0.0.1:PORT/BUCKET/KEY`); virtual-hosted style would need
//!   `--domain`. Any region is accepted: the signature is checked with the region named in the request's
//!   credential scope, so `us-east-1` ([`S3_REGION`]) and `eu-west-3` both work.
//! - **`x-amz-content-sha256` is required** on every header-signed request (400 `InvalidRequest`, "missing header:
//!   x-amz-content-sha256", without it). curl 7.88 does not add it by itself: pass
//!   `-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'` ([`S3Server::curl_sigv4_args`] does). curl 7.88 also signs the
//!   query string in the order written, so write query parameters sorted by name, or a correct request gets 403.
//! - **Range GETs** work: `bytes=1000-1999` → 206, `Content-Range: bytes 1000-1999/LEN`, `Content-Length: 1000`;
//!   suffix `bytes=-500` and open-ended `bytes=N-` → 206; an end past EOF is clamped to the last byte; a start at
//!   or past EOF → 416 with `<Code>InvalidRange</Code>` and **no** `Content-Range: bytes */LEN`; several ranges
//!   (`bytes=0-1,5-6`) → 400. **No `Accept-Ranges` header** on any response (HEAD, 200 or 206).
//! - **Conditional requests are ignored on GET and HEAD**: `If-Match` with a wrong ETag → 200 (206 with a
//!   Range), never 412; `If-None-Match` with the current ETag → 200, never 304; `If-Range` with a wrong ETag still
//!   gives 206; `If-Unmodified-Since` in the past → 200. A client must compare the `ETag` of every 200/206 (each
//!   carries it) with the one it started with. (Only PutObject honours `If-Match`/`If-None-Match: *`.)
//! - **HEAD** returns `Content-Length`, `ETag`, `Last-Modified` (IMF-fixdate, whole seconds, the file's mtime),
//!   `Content-Type` only if the upload sent one, and `x-amz-checksum-*` when a checksum was stored (see below).
//! - **ETag**: for a single-part upload, the MD5 of the bytes as lowercase hex in double quotes
//!   (`"b4748dd73dba00aa25dbed38b716067c"`), recorded in the sidecar. For a file written to disk without a sidecar
//!   the server computes the same quoted MD5 hex, but **on every HEAD and GET, reading the whole file** (1.5 s for
//!   a 512 MiB file, even for a 1-byte range); the `put_*` methods here write the sidecar so that never happens.
//!   A multipart upload gets `"MD5-OF-PART-MD5S-N"` (e.g. `"00565e75f2ac9429e69c05cdda6d10e3-2"`), not an MD5 of
//!   the object.
//! - **Checksums**: a PutObject with `ChecksumAlgorithm=SHA256` (boto3) stores the SHA-256 and HEAD returns
//!   `x-amz-checksum-sha256: BASE64` **whether or not `x-amz-checksum-mode: ENABLED` is sent**; a full GET returns
//!   it too, a ranged GET does not. boto3 ≥ 1.36 sends a CRC32 by default (`request_checksum_calculation`), which
//!   is then stored and returned as `x-amz-checksum-crc32`. A PutObject without any checksum (curl) stores none. A
//!   multipart upload stores no checksum at all, whatever the parts carried.
//! - **ListObjectsV2**: default and `max-keys` page size 1,000, but `max-keys` is **not capped**: `max-keys=5000`
//!   returns 2,500 keys in one page. `NextContinuationToken` is simply the last key returned (not opaque);
//!   `continuation-token` and `start-after` both mean "keys after this one". `max-keys=0` gives an empty,
//!   untruncated page. `<Contents>` has only `Key`, `LastModified` (ms precision) and `Size`: **no `ETag`, no
//!   `StorageClass`**. `encoding-type=url` is echoed back but **keys are not URL-encoded**, so a client that
//!   decodes them (boto3 does, by default) turns `a+b` into `a b`. `Delimiter=/` and `prefix` work
//!   (`CommonPrefixes`). Keys are whatever the directory tree holds, sorted by byte.
//! - **Keys and the filesystem**: keys are paths, so a key `dir` and a key `dir/x` cannot both exist (the second
//!   PUT gets 500 `InternalError`), a GET of a key that is a directory gives 500 `InternalError`, `x//y` is stored
//!   and listed as `x/y`, and `/abs` gives 500 `InternalError`.
//! - **Keys with `../`**: PutObject *accepts* them and normalises the path inside the server's root: in bucket
//!   `bkt`, key `a/../b` is stored (and listed) as `b`, `../other/k` lands in **bucket `other`** as `k`, and
//!   `../../k` lands at `root/k`, in no bucket. A GET of the same key reads the same file back. Nothing ever leaves
//!   the root, and **a listing never contains `..`, `.` or an absolute key**: a listing with hostile keys needs a
//!   fake server. (A file named `..` cannot be made on disk either.)
//! - **Errors** are `application/xml` `<Error><Code>…</Code>[<Message>…</Message>]</Error>`, with no
//!   `RequestId` or `Resource`:
//!   wrong secret → 403 `SignatureDoesNotMatch` (no message); unknown access key → 403 `NotSignedUp` ("Your account
//!   is not signed up"); no signature at all → 403 `AccessDenied` ("Signature is required"); missing key → 404
//!   `NoSuchKey`; **GET in a missing bucket → 404 `NoSuchKey`**, while HEAD of an object in a missing bucket and
//!   ListObjectsV2 of a missing bucket → 404 `NoSuchBucket`. HEAD errors have no body, but their
//!   `Content-Length` is the length of the XML a GET would get (87 for `SignatureDoesNotMatch`): a client must not
//!   try to read it.
//! - **Presigned URLs** (boto3 `generate_presigned_url`, `X-Amz-SignedHeaders=host`): plain curl downloads them,
//!   with or without a `Range` header (206). A **HEAD** with a presigned GET URL → 403 `SignatureDoesNotMatch`
//!   (the method is signed; real S3 does the same). A wrong but well-formed signature (64 hex digits) → 403
//!   `SignatureDoesNotMatch`; a malformed one (say 65 characters) → 400 `InvalidRequest` ("missing presigned url
//!   v4 fields"); changing `X-Amz-Expires` → 403 `SignatureDoesNotMatch`; an expired URL → 403 `AccessDenied`
//!   ("Request has expired").
//! - Responses have `content-length` and no `accept-ranges`, `x-amz-request-id` or `server` headers. The
//!   server speaks HTTP/1.1 (and h2c with prior knowledge), without TLS.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::digest::sha256_file;
use crate::fixture::write_random_file;
use crate::peer::{ChildGuard, missing_peer, which};

/// The access key ID the server accepts (the only one).
pub const S3_ACCESS_KEY: &str = "DLMTESTACCESSKEY0001";
/// The secret key that goes with [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "dlm-test-secret-key/0123456789+abcdefghij";
/// The region the helpers here sign for. s3s-fs accepts any region; this is the one to use.
pub const S3_REGION: &str = "us-east-1";
/// Where `scripts/test` installs s3s-fs (`cargo install --root`); [`S3Server::start`] looks here after `PATH`.
pub const S3S_FS_INSTALL_ROOT: &str = "/opt/dlm-peers/s3s-fs";
/// The boto3 helper script (presigned URLs, uploads through the real API).
pub const S3_FIXTURES_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/s3_fixtures.py");

/// How long s3s-fs may take to listen (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one boto3 helper run may take (bounds a hang only; its own socket timeouts are 10 s and 30 s).
const BOTO3_TIMEOUT: Duration = Duration::from_secs(120);
/// What s3s-fs logs (at `info`) once it listens; the URL follows.
const READY_LINE: &str = "server is running at http://";
/// Files per `md5sum` run when storing many objects.
const MD5SUM_BATCH: usize = 256;

/// Which checksum an object stored by the `put_*` methods records, as a PutObject carrying that checksum would.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoredChecksum {
    /// None (as a PutObject from curl): HEAD and GET carry no `x-amz-checksum-*` header.
    #[default]
    None,
    /// SHA-256 (as boto3's `ChecksumAlgorithm=SHA256`): HEAD and full GETs carry `x-amz-checksum-sha256`.
    Sha256,
}

/// An object as stored: what HEAD will report, and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its length in bytes (`Content-Length` of HEAD and of a full GET).
    pub size_bytes: u64,
    /// The `ETag` header value, quotes included: `"MD5HEX"`.
    pub etag: String,
    /// SHA-256 of the bytes, 64 lowercase hex digits (always computed; what dlm's verification reports).
    pub sha256: String,
    /// The `x-amz-checksum-sha256` header value (base64 of the digest), when recorded
    /// ([`StoredChecksum::Sha256`]).
    pub checksum_sha256: Option<String>,
}

/// One upload for [`S3Server::upload_with_boto3`].
#[derive(Clone, Debug)]
pub struct Boto3Upload {
    /// Target bucket (must exist).
    pub bucket: String,
    /// Target key.
    pub key: String,
    /// The local file to upload.
    pub path: PathBuf,
    /// Upload with `ChecksumAlgorithm=SHA256` (single-part uploads then store `x-amz-checksum-sha256`; s3s-fs
    /// stores no checksum for multipart uploads). Without it the upload carries no checksum.
    pub sha256: bool,
    /// Upload as a multipart upload in parts of this many bytes (S3 wants at least 5 MiB for all but the last
    /// part; s3s-fs does not check). `None`: one PutObject.
    pub part_size_bytes: Option<u64>,
}

/// A running s3s-fs, stopped by PID on drop.
#[derive(Debug)]
pub struct S3Server {
    // Field order is drop order: stop the server before removing its dir.
    child: ChildGuard,
    port: u16,
    staging: AtomicU64,
    dir: TempDir,
}

impl S3Server {
    /// Starts s3s-fs on a free port of 127.0.0.1 (it binds port 0 and logs the port, so there is no race), with
    /// signature checking on for [`S3_ACCESS_KEY`]/[`S3_SECRET_KEY`] and an empty root in a temp dir. Returns
    /// `None` (after `skipping: …`) when s3s-fs is not installed.
    ///
    /// # Panics
    /// When s3s-fs is missing under `DLM_REQUIRE_PEERS=1`, or does not start.
    pub fn start() -> Option<Self> {
        let Some(bin) = s3s_fs_binary() else {
            return missing_peer("s3s-fs (scripts/test installs it)");
        };
        let dir = tempfile::Builder::new()
            .prefix("dlm-s3s-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("create root");
        let log_path = dir.path().join("server.log");
        let log = fs::File::create(&log_path).expect("create log");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(&root)
            .current_dir(dir.path())
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut child = ChildGuard::new("s3s-fs", child);
        let port = child
            .wait_for_line(&log_path, START_TIMEOUT, |l| {
                l.split_once(READY_LINE)
                    .and_then(|(_, addr)| addr.trim().rsplit_once(':'))
                    .and_then(|(_, port)| port.parse().ok())
            })
            .unwrap_or_else(|e| {
                panic!(
                    "s3s-fs did not start: {e}\n--- log ---\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        child
            .wait_for_port(port, START_TIMEOUT)
            .unwrap_or_else(|e| panic!("s3s-fs: {e}"));
        Some(Self {
            child,
            port,
            staging: AtomicU64::new(0),
            dir,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL, path-style.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The region to sign for: [`S3_REGION`].
    pub fn region(&self) -> &'static str {
        S3_REGION
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The data directory: one subdirectory per bucket, plus s3s-fs's sidecar files.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The server's log so far (start-up lines; s3s-fs logs no requests at `info`).
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn log(&self) -> io::Result<String> {
        fs::read_to_string(self.dir.path().join("server.log"))
    }

    /// `ENDPOINT/BUCKET/KEY`, the key percent-encoded as SigV4 canonical URIs are (everything but
    /// `A-Za-z0-9-._~` and `/`): the path-style URL of an object.
    pub fn http_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{}", self.endpoint(), uri_encode_path(key))
    }

    /// `s3://BUCKET/KEY`, the key as given.
    pub fn s3_url(&self, bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }

    /// The environment an AWS CLI, SDK or dlm run needs to reach this server: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_DEFAULT_REGION` (for awscli v1), `AWS_ENDPOINT_URL`, and
    /// `AWS_EC2_METADATA_DISABLED=true` (no instance-metadata lookups that would time out).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_owned()),
            ("AWS_REGION", S3_REGION.to_owned()),
            ("AWS_DEFAULT_REGION", S3_REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// curl arguments that sign a request for this server with `secret_key`: `--aws-sigv4 aws:amz:REGION:s3
    /// --user KEY:SECRET -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'` (s3s-fs requires that header and curl 7.88
    /// does not add it). curl 7.88 signs query parameters in the order written: sort them by name.
    pub fn curl_sigv4_args(&self, secret_key: &str) -> Vec<String> {
        vec![
            "--aws-sigv4".to_owned(),
            format!("aws:amz:{S3_REGION}:s3"),
            "--user".to_owned(),
            format!("{S3_ACCESS_KEY}:{secret_key}"),
            "-H".to_owned(),
            "x-amz-content-sha256: UNSIGNED-PAYLOAD".to_owned(),
        ]
    }

    /// Creates bucket `name` (a directory under [`Self::root`], as CreateBucket does).
    ///
    /// # Panics
    /// When `name` is not a valid S3 bucket name (3 to 63 of `a-z0-9.-`, starting and ending with a letter or
    /// digit) or the directory cannot be created (say, it exists).
    pub fn create_bucket(&self, name: &str) {
        assert!(
            name.len() >= 3
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-')
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric()),
            "not a valid S3 bucket name: {name:?}"
        );
        fs::create_dir(self.root().join(name))
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    }

    /// The file that holds `bucket`/`key`. Writing it directly changes the bytes the server serves but not the
    /// ETag it reports (see the module docs); use [`Self::put_object`] to replace an object.
    ///
    /// # Panics
    /// When `key` is not a plain relative path (empty, or with a leading or trailing `/`, an empty segment, or a
    /// `.` or `..` segment): such keys have no file of their own.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        assert!(
            !key.is_empty()
                && key
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
            "key {key:?} has no file of its own in s3s-fs (it is not a plain relative path)"
        );
        self.root().join(bucket).join(key)
    }

    /// Stores `data` as `bucket`/`key` directly on disk, with no checksum recorded, replacing any object there.
    ///
    /// # Panics
    /// As [`Self::put_object_with`].
    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) -> StoredObject {
        self.put_object_with(bucket, key, data, StoredChecksum::None)
    }

    /// Stores `data` as `bucket`/`key` directly on disk, as a PutObject carrying `checksum` would, replacing any
    /// object there: writes the file, then the sidecar with the MD5 ETag (and the checksum). Parent
    /// directories are created.
    ///
    /// # Panics
    /// When the bucket does not exist, `key` is not a plain relative path ([`Self::object_path`]), or a file
    /// cannot be written.
    pub fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        checksum: StoredChecksum,
    ) -> StoredObject {
        let staged = self.staging_path();
        fs::write(&staged, data).unwrap_or_else(|e| panic!("write {}: {e}", staged.display()));
        let sha256 = hex::encode(Sha256::digest(data));
        self.store(bucket, key, &staged, sha256, checksum)
    }

    /// Stores a copy of the local file `src` as `bucket`/`key`, as [`Self::put_object_with`] does.
    ///
    /// # Panics
    /// As [`Self::put_object_with`], or when `src` cannot be read.
    pub fn put_file(
        &self,
        bucket: &str,
        key: &str,
        src: &Path,
        checksum: StoredChecksum,
    ) -> StoredObject {
        let staged = self.staging_path();
        fs::copy(src, &staged).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        let sha256 = sha256_file(&staged).expect("hash the staged copy");
        self.store(bucket, key, &staged, sha256, checksum)
    }

    /// Stores `size_bytes` pseudo-random bytes (the same `seed` gives the same bytes as
    /// [`write_random_file`]) as `bucket`/`key`, as [`Self::put_object_with`] does. The bytes are written
    /// straight into the server's root, so this suits large benchmark objects.
    ///
    /// # Panics
    /// As [`Self::put_object_with`].
    pub fn put_random_object(
        &self,
        bucket: &str,
        key: &str,
        size_bytes: u64,
        seed: u64,
        checksum: StoredChecksum,
    ) -> StoredObject {
        let staged = self.staging_path();
        let name = staged
            .file_name()
            .expect("staging name")
            .to_str()
            .expect("utf-8");
        let sha256 =
            write_random_file(&self.root(), name, size_bytes, seed).expect("write random object");
        self.store(bucket, key, &staged, sha256, checksum)
    }

    /// Stores many small objects in `bucket` at once (one `md5sum` run per 256 objects), each with no
    /// checksum recorded. Returns them in the order given.
    ///
    /// # Panics
    /// As [`Self::put_object_with`].
    pub fn put_objects(&self, bucket: &str, objects: &[(&str, &[u8])]) -> Vec<StoredObject> {
        let mut out = Vec::with_capacity(objects.len());
        for batch in objects.chunks(MD5SUM_BATCH) {
            let staged: Vec<PathBuf> = batch
                .iter()
                .map(|(_, data)| {
                    let path = self.staging_path();
                    fs::write(&path, data)
                        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                    path
                })
                .collect();
            let md5s = md5_hex(&staged);
            for (((key, data), path), md5) in batch.iter().zip(&staged).zip(md5s) {
                let sha256 = hex::encode(Sha256::digest(data));
                out.push(self.install(bucket, key, path, &md5, sha256, StoredChecksum::None));
            }
        }
        out
    }

    /// Uploads files through the real S3 API with boto3 (`tests/peers/s3_fixtures.py`, one Python process for
    /// all of them), in order, and returns each upload's `ETag` header value (quotes included). Use it for what
    /// direct writes cannot give: multipart ETags (`"…-N"`) and whatever the server itself records.
    ///
    /// # Panics
    /// When python3 or boto3 is missing (check [`Self::require_boto3`] first) or an upload fails.
    pub fn upload_with_boto3(&self, uploads: &[Boto3Upload]) -> Vec<String> {
        let items: Vec<serde_json::Value> = uploads
            .iter()
            .map(|u| {
                serde_json::json!({
                    "bucket": u.bucket,
                    "key": u.key,
                    "path": u.path,
                    "sha256": u.sha256,
                    "part_size": u.part_size_bytes,
                })
            })
            .collect();
        let input = serde_json::to_vec(&items).expect("json");
        let out = self.run_fixtures_script(&["upload"], &input);
        let results: Vec<serde_json::Value> = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("s3_fixtures.py upload: {e}: {out}"));
        results
            .iter()
            .map(|r| r["etag"].as_str().expect("etag").to_owned())
            .collect()
    }

    /// A presigned GetObject URL for `bucket`/`key`, valid for `expires` (whole seconds), made by boto3
    /// (`generate_presigned_url`, SigV4 query string, path-style, signed headers `host`). Plain curl downloads it,
    /// with or without a `Range` header; a HEAD with it gets 403.
    ///
    /// # Panics
    /// When python3 or boto3 is missing (check [`Self::require_boto3`] first) or the script fails.
    pub fn presign_with_boto3(&self, bucket: &str, key: &str, expires: Duration) -> String {
        let secs = expires.as_secs().to_string();
        self.run_fixtures_script(&["presign", bucket, key, &secs], b"")
            .trim()
            .to_owned()
    }

    /// Whether python3 can import boto3. When it cannot, reports it as a missing peer (`skipping: …`, or a panic
    /// under `DLM_REQUIRE_PEERS=1`) and returns `false`, so a test can return early.
    ///
    /// # Panics
    /// When boto3 is missing under `DLM_REQUIRE_PEERS=1`.
    pub fn require_boto3(&self) -> bool {
        let ok = which("python3").is_some_and(|python| {
            Command::new(python)
                .args(["-c", "import boto3"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        ok || missing_peer::<()>("boto3 (python3 -m pip install boto3; scripts/test installs it)")
            .is_some()
    }

    /// A fresh path in the root for a file being prepared; s3s-fs lists only directories there, so it is never
    /// seen as a bucket or an object.
    fn staging_path(&self) -> PathBuf {
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        self.root().join(format!(".dlm-staging-{n}"))
    }

    /// Hashes `staged` with md5sum and installs it as `bucket`/`key`.
    fn store(
        &self,
        bucket: &str,
        key: &str,
        staged: &Path,
        sha256: String,
        checksum: StoredChecksum,
    ) -> StoredObject {
        let md5 = md5_hex(&[staged.to_path_buf()]).remove(0);
        self.install(bucket, key, staged, &md5, sha256, checksum)
    }

    /// Renames `staged` to the object's path, then writes the sidecar s3s-fs reads the ETag and checksums from,
    /// and removes the attributes sidecar (Content-Type and friends) of any object it replaces.
    fn install(
        &self,
        bucket: &str,
        key: &str,
        staged: &Path,
        md5: &str,
        sha256: String,
        checksum: StoredChecksum,
    ) -> StoredObject {
        assert!(
            self.root().join(bucket).is_dir(),
            "bucket {bucket:?} does not exist (create_bucket it first)"
        );
        let path = self.object_path(bucket, key);
        let size_bytes = fs::metadata(staged).expect("staged file").len();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        fs::rename(staged, &path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
        let checksum_sha256 = match checksum {
            StoredChecksum::None => None,
            StoredChecksum::Sha256 => Some(base64_standard(
                &hex::decode(&sha256).expect("sha256 is hex"),
            )),
        };
        let mut info = serde_json::Map::new();
        info.insert("e_tag".to_owned(), md5.into());
        if let Some(b64) = &checksum_sha256 {
            info.insert("checksum_sha256".to_owned(), b64.as_str().into());
        }
        let sidecar = self.sidecar_path(bucket, key, "internal");
        let staged_sidecar = self.staging_path();
        fs::write(&staged_sidecar, serde_json::to_vec(&info).expect("json"))
            .expect("write sidecar");
        fs::rename(&staged_sidecar, &sidecar).expect("rename sidecar");
        match fs::remove_file(self.sidecar_path(bucket, key, "metadata")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => panic!("remove metadata sidecar: {e}"),
            _ => {}
        }
        StoredObject {
            size_bytes,
            etag: format!("\"{md5}\""),
            sha256,
            checksum_sha256,
        }
    }

    /// `root/.bucket-B64(bucket).object-B64(key).KIND.json`, s3s-fs 0.14.1's sidecar naming (`KIND` is `internal`
    /// for the ETag and checksums, `metadata` for Content-Type and user metadata).
    fn sidecar_path(&self, bucket: &str, key: &str, kind: &str) -> PathBuf {
        self.root().join(format!(
            ".bucket-{}.object-{}.{kind}.json",
            base64_url_no_pad(bucket.as_bytes()),
            base64_url_no_pad(key.as_bytes())
        ))
    }

    /// Runs `python3 s3_fixtures.py ARGS` with this server's [`Self::env`], `input` on stdin, and returns its
    /// stdout; bounded by [`BOTO3_TIMEOUT`].
    fn run_fixtures_script(&self, args: &[&str], input: &[u8]) -> String {
        let python = which("python3").expect("python3 is not installed");
        let mut child = Command::new(python)
            .arg(S3_FIXTURES_SCRIPT)
            .args(args)
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // A separate thread, so a script that never reads stdin cannot block us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(BOTO3_TIMEOUT) {
            Ok(output) => output.expect("wait for python3"),
            Err(_) => {
                if let Ok(raw) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(raw),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                panic!("s3_fixtures.py {args:?} did not finish within {BOTO3_TIMEOUT:?}");
            }
        };
        assert!(
            output.status.success(),
            "s3_fixtures.py {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }
}

/// s3s-fs on `PATH`, else where `scripts/test` installs it.
fn s3s_fs_binary() -> Option<PathBuf> {
    which("s3s-fs").or_else(|| which(&format!("{S3S_FS_INSTALL_ROOT}/bin/s3s-fs")))
}

/// The MD5 of each file as 32 lowercase hex digits, in order, from one `md5sum` run (coreutils; the staging
/// names contain nothing md5sum would escape).
fn md5_hex(paths: &[PathBuf]) -> Vec<String> {
    let out = Command::new("md5sum")
        .arg("--")
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .expect("run md5sum");
    assert!(
        out.status.success(),
        "md5sum failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("md5sum output");
    let sums: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sums.len(), paths.len(), "md5sum output: {text}");
    sums
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 (RFC 4648 §4), padded: the form of `x-amz-checksum-*` headers.
fn base64_standard(bytes: &[u8]) -> String {
    let mut s = base64(bytes, BASE64_STANDARD);
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// Base64url (RFC 4648 §5) without padding: s3s-fs's encoding of bucket and key in sidecar names.
fn base64_url_no_pad(bytes: &[u8]) -> String {
    base64(bytes, BASE64_URL)
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Percent-encodes `key` as a SigV4 canonical URI path: all but `A-Za-z0-9-._~` and `/`.
fn uri_encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64_standard(plain.as_bytes()), encoded);
            assert_eq!(
                base64_url_no_pad(plain.as_bytes()),
                encoded.trim_end_matches('=')
            );
        }
        // As s3s-fs names the sidecar of bucket `bkt`, key `dir/obj.bin`.
        assert_eq!(base64_url_no_pad(b"bkt"), "Ymt0");
        assert_eq!(base64_url_no_pad(b"dir/obj.bin"), "ZGlyL29iai5iaW4");
        assert_eq!(base64_url_no_pad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn keys_are_encoded_as_sigv4_paths() {
        assert_eq!(uri_encode_path("a b/c+d~e%.txt"), "a%20b/c%2Bd~e%25.txt");
        assert_eq!(uri_encode_path("é"), "%C3%A9");
    }
}
