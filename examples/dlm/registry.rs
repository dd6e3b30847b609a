//! The registry every embedding starts from: all protocol crates, configured
//! from the command line.

use std::time::Duration;

use dlm_core::ProtocolRegistry;
use dlm_http::{HttpConfig, NetrcMode};

use crate::args::{NetArgs, PeerArg};

/// The HTTP configuration the flags describe.
pub(crate) fn http_config(net: &NetArgs) -> Result<HttpConfig, String> {
    let mut c = HttpConfig::default()
        .with_connect_timeout(Duration::from_secs(net.connect_timeout.max(1)))
        .with_idle_timeout(Duration::from_secs(net.timeout.max(1)))
        .with_insecure(net.insecure)
        .with_http2(net.http2);
    for h in &net.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not \"Name: value\""))?;
        c = c.with_header(k.trim(), v.trim());
    }
    if let Some(ua) = &net.user_agent {
        c = c.with_user_agent(ua.clone());
    }
    if let Some(p) = &net.proxy {
        c = c.with_proxy(p.clone());
    }
    if let Some(n) = &net.no_proxy {
        c = c.with_no_proxy(n.clone());
    }
    if let Some(ca) = &net.ca_file {
        c = c.with_ca_file(ca.clone());
    }
    if net.no_netrc {
        c = c.with_netrc(NetrcMode::Off);
    }
    Ok(c)
}

/// The FTP configuration the flags describe.
pub(crate) fn ftp_config(net: &NetArgs) -> dlm_ftp::FtpConfig {
    let mut c = dlm_ftp::FtpConfig::default()
        .with_connect_timeout(Duration::from_secs(net.connect_timeout.max(1)))
        .with_idle_timeout(Duration::from_secs(net.timeout.max(1)))
        .with_insecure(net.insecure)
        .with_explicit_tls(net.ftp_ssl)
        .with_active(net.ftp_active);
    if let Some(ca) = &net.ca_file {
        c = c.with_ca_file(ca.clone());
    }
    if net.no_netrc {
        c = c.with_netrc(NetrcMode::Off);
    }
    c
}

/// The S3 configuration the flags describe (credentials from the environment).
pub(crate) fn s3_config(net: &NetArgs) -> Result<dlm_s3::S3Config, String> {
    let mut c = dlm_s3::S3Config::default()
        .with_http(http_config(net)?)
        .with_anonymous(net.no_sign_request);
    if let Some(e) = &net.endpoint_url {
        let url = url::Url::parse(e).map_err(|err| format!("--endpoint-url {e:?}: {err}"))?;
        c = c.with_endpoint_url(url);
    }
    if let Some(r) = &net.region {
        c = c.with_region(r.clone());
    }
    if let Some(p) = &net.profile {
        c = c.with_profile(p.clone());
    }
    Ok(c)
}

/// The BitTorrent configuration the flags describe.
pub(crate) fn torrent_config(net: &NetArgs) -> Result<dlm_bittorrent::TorrentConfig, String> {
    let mut c = dlm_bittorrent::TorrentConfig::default()
        .with_http(http_config(net)?)
        .with_selected(net.select_file.as_ref().map(|f| f.0.clone()))
        .with_max_peers(net.max_peers)
        .with_listen_port((!net.no_listen).then_some(net.listen_port))
        .with_upload_limit(net.upload_limit);
    for p in &net.peers {
        if let PeerArg::Torrent(a) = p {
            c = c.with_peer(*a);
        }
    }
    Ok(c)
}

/// Every protocol dlm ships, registered.
pub(crate) fn default_registry(net: &NetArgs) -> Result<ProtocolRegistry, String> {
    let mut registry = ProtocolRegistry::new();
    dlm_http::register_with(&mut registry, http_config(net)?).map_err(|e| e.to_string())?;
    dlm_ftp::register_with(&mut registry, ftp_config(net)).map_err(|e| e.to_string())?;
    dlm_s3::register_with(&mut registry, s3_config(net)?).map_err(|e| e.to_string())?;
    dlm_bittorrent::register_with(&mut registry, torrent_config(net)?)
        .map_err(|e| e.to_string())?;
    dlm_ipfs::register(&mut registry, ipfs_config(net)?).map_err(|e| e.to_string())?;
    Ok(registry)
}

/// The IPFS configuration the flags describe: `--gateway`s (else the
/// default public list, or none with `--no-gateway`), `--peer` multiaddrs,
/// `--dht`.
pub(crate) fn ipfs_config(net: &NetArgs) -> Result<dlm_ipfs::IpfsConfig, String> {
    let mut c = dlm_ipfs::IpfsConfig::default()
        .with_http(http_config(net)?)
        .with_dht(net.dht)
        .with_peers(
            net.peers
                .iter()
                .filter_map(|p| match p {
                    PeerArg::Ipfs(m) => Some(m.clone()),
                    PeerArg::Torrent(_) => None,
                })
                .collect(),
        );
    if net.no_gateway {
        c = c.with_gateways(Vec::new());
    } else if !net.gateways.is_empty() {
        c = c.with_gateways(net.gateways.clone());
    }
    Ok(c)
}
