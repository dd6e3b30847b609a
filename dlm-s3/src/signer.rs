//! `S3Signer`: AWS Signature Version 4 on requests and presigned URLs, by
//! reqsign-aws-v4 (Apache OpenDAL's signer), with credentials in the order
//! the issue fixes: explicit config, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, then `~/.aws/credentials` and `~/.aws/config` with
//! `AWS_PROFILE` (reqsign's default chain goes on with SSO, web identity, ECS
//! and instance metadata).

use std::time::Duration;

use dlm_http::HttpClient;
use http::{HeaderMap, Method};
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, ProfileCredentialProvider, RequestSigner,
    StaticCredentialProvider,
};
use reqsign_core::{Context, OsEnv, Signer, StaticEnv};
use url::Url;

use crate::reqsign_io::{DlmHttp, TokioFiles};
use crate::{S3Config, S3Error};

/// Signs requests for one region, or leaves them unsigned (anonymous).
#[derive(Debug, Clone)]
pub(crate) struct S3Signer {
    signer: Option<Signer<Credential>>,
    region: String,
}

impl S3Signer {
    /// A signer for `region`.
    ///
    /// # Errors
    /// [`S3Error::Credentials`] when the environment is off and no explicit
    /// credentials are configured (and the config is not anonymous).
    pub(crate) fn new(config: &S3Config, region: &str, http: &HttpClient) -> Result<Self, S3Error> {
        if config.anonymous {
            return Ok(Self {
                signer: None,
                region: region.to_string(),
            });
        }
        let mut ctx = Context::new()
            .with_file_read(TokioFiles)
            .with_http_send(DlmHttp(http.clone()));
        ctx = if config.use_environment {
            ctx.with_env(OsEnv)
        } else {
            ctx.with_env(StaticEnv::default())
        };
        let request_signer = RequestSigner::new("s3", region);
        let signer = match (&config.credentials, config.use_environment) {
            (Some(c), _) => {
                let mut p = StaticCredentialProvider::new(&c.access_key_id, &c.secret_access_key);
                if let Some(t) = &c.session_token {
                    p = p.with_session_token(t);
                }
                Signer::new(ctx, p, request_signer)
            }
            (None, true) => {
                let provider = match &config.profile {
                    Some(p) => DefaultCredentialProvider::builder()
                        .profile(ProfileCredentialProvider::new().with_profile(p.clone()))
                        .build(),
                    None => DefaultCredentialProvider::new(),
                };
                Signer::new(ctx, provider, request_signer)
            }
            (None, false) => {
                return Err(S3Error::Credentials(
                    "no credentials configured and the environment is not read".into(),
                ));
            }
        };
        Ok(Self {
            signer: Some(signer),
            region: region.to_string(),
        })
    }

    /// The region this signer signs for.
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// Adds `Authorization`, `x-amz-date`, `x-amz-content-sha256` (and
    /// `x-amz-security-token`) to a bodyless request. Anonymous: nothing.
    ///
    /// # Errors
    /// [`S3Error::Credentials`] when no credentials are found;
    /// [`S3Error::Signing`] when the request cannot be signed.
    pub(crate) async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
    ) -> Result<(), S3Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let mut parts = parts(method, url, headers)?;
        signer.sign(&mut parts, None).await.map_err(sign_error)?;
        *headers = parts.headers;
        Ok(())
    }

    /// A presigned `GET` URL for `url`, valid for `expires` (at most 7 days,
    /// SigV4's limit).
    ///
    /// # Errors
    /// As [`S3Signer::sign`]; [`S3Error::InvalidInput`] for an anonymous
    /// signer or an expiry over 7 days.
    pub(crate) async fn presign(&self, url: &Url, expires: Duration) -> Result<Url, S3Error> {
        let Some(signer) = &self.signer else {
            return Err(S3Error::InvalidInput(
                "cannot presign without credentials".into(),
            ));
        };
        if expires > Duration::from_secs(7 * 24 * 3600) || expires.is_zero() {
            return Err(S3Error::InvalidInput(
                "a presigned URL expires after 1 s to 7 days (604800 s)".into(),
            ));
        }
        let mut parts = parts(&Method::GET, url, &HeaderMap::new())?;
        signer
            .sign(&mut parts, Some(expires))
            .await
            .map_err(sign_error)?;
        Url::parse(&parts.uri.to_string())
            .map_err(|e| S3Error::Signing(format!("presigned URL does not parse: {e}")))
    }
}

fn parts(method: &Method, url: &Url, headers: &HeaderMap) -> Result<http::request::Parts, S3Error> {
    let mut req = http::Request::builder()
        .method(method.clone())
        .uri(url.as_str())
        .body(())
        .map_err(|e| S3Error::InvalidInput(format!("request URL: {e}")))?;
    *req.headers_mut() = headers.clone();
    Ok(req.into_parts().0)
}

fn sign_error(e: reqsign_core::Error) -> S3Error {
    use reqsign_core::ErrorKind as K;
    // reqsign's messages name the missing piece, never the secret.
    match e.kind() {
        K::CredentialInvalid | K::PermissionDenied | K::ConfigInvalid => {
            S3Error::Credentials(e.to_string())
        }
        _ => S3Error::Signing(e.to_string()),
    }
}
