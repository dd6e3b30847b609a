//! `IpfsListing`: a UnixFS directory (plain or HAMT-sharded) as a
//! `dlm_core::Listing`, walked depth-first; files become [`IpfsSource`]s
//! sharing one session. A name that is not one safe path component
//! (`dlm_core::safe_file_name`) is not entered or fetched: it is listed as
//! it is, for the tree download to refuse and report.

use std::sync::Arc;

use cid::Cid;
use dlm_core::{Context, Entry, Listing, Result};
use futures::stream::{self, BoxStream, StreamExt};

use crate::address::IpfsAddress;
use crate::directory::entries;
use crate::session::{Resolved, Session};
use crate::source::IpfsSource;
use crate::unixfs::Node;

/// Directory metadata fetched at once while listing.
const LIST_WINDOW: usize = 16;

/// A directory tree.
#[derive(Debug)]
pub struct IpfsListing {
    session: Arc<Session>,
    address: IpfsAddress,
    root: Resolved,
}

impl IpfsListing {
    pub(crate) fn new(session: Arc<Session>, address: IpfsAddress, root: Resolved) -> Self {
        Self {
            session,
            address,
            root,
        }
    }
}

struct Walk {
    pending: Vec<(Vec<String>, Node)>,
    ready: std::collections::VecDeque<Entry>,
    /// Entries and shards listed so far, against `ipfs.max_tree_entries`.
    listed: usize,
}

impl Listing for IpfsListing {
    fn identity(&self) -> String {
        self.address.to_string()
    }

    /// The last path segment, else the CID or IPNS name (as ipget names it).
    fn name(&self) -> Option<String> {
        if let Some(n) = self.address.file_name() {
            return Some(n.to_string());
        }
        url::Url::parse(&self.address.to_string())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    }

    fn describe(&self) -> Vec<(String, String)> {
        crate::inspect::fields(&self.address, &self.root.cid, &self.root.node)
    }

    fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
        let walk = Walk {
            pending: vec![(Vec::new(), self.root.node.clone())],
            ready: Default::default(),
            listed: 0,
        };
        stream::unfold(walk, move |mut walk| async move {
            loop {
                if let Some(e) = walk.ready.pop_front() {
                    return Some((Ok(e), walk));
                }
                let (path, node) = walk.pending.pop()?;
                let config = &self.session.config;
                if path.len() > config.max_tree_depth {
                    // This directory alone is left out.
                    let e = crate::IpfsError::TooLarge(format!(
                        "{}: deeper than {} directories (ipfs.max_tree_depth)",
                        path.join("/"),
                        config.max_tree_depth
                    ));
                    return Some((Err(e.into()), walk));
                }
                match self.expand(&path, &node, &mut walk.listed).await {
                    Ok((files, dirs)) => {
                        walk.ready.extend(files);
                        walk.pending.extend(dirs.into_iter().rev());
                    }
                    Err(e) => {
                        if walk.listed >= config.max_tree_entries {
                            // Over the tree's budget: nothing more is listed.
                            walk.pending.clear();
                        }
                        return Some((Err(e), walk));
                    }
                }
            }
        })
        .boxed()
    }
}

impl IpfsListing {
    /// One directory's files (as entries) and subdirectories (to walk),
    /// counted into `listed`; over `ipfs.max_tree_entries`, `listed` is set
    /// to it and the error is [`IpfsError::TooLarge`](crate::IpfsError::TooLarge).
    async fn expand(
        &self,
        path: &[String],
        node: &Node,
        listed: &mut usize,
    ) -> Result<(Vec<Entry>, Vec<(Vec<String>, Node)>)> {
        let max = self.session.config.max_tree_entries;
        let blocks = self.session.any_blocks().await?;
        let budget = max.saturating_sub(*listed);
        let mut list = match entries(blocks.as_ref(), node, budget).await {
            Ok(l) => l,
            Err(e @ crate::IpfsError::TooLarge(_)) => {
                *listed = max;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        *listed += list.len();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let mut files = Vec::new();
        let (children, unsafe_names): (Vec<(String, Cid)>, Vec<_>) = list
            .into_iter()
            .partition(|(name, _)| dlm_core::safe_file_name(name).as_deref() == Some(name));
        for (name, _) in unsafe_names {
            let child_path = [path, &[name]].concat();
            files.push(Entry::new(
                child_path.clone(),
                None,
                self.source(&child_path, None),
            ));
        }
        let fetched: Vec<_> = stream::iter(children)
            .map(|(name, cid)| {
                let blocks = blocks.clone();
                async move {
                    let data = blocks.get(&cid).await?;
                    Ok::<_, crate::IpfsError>((name, cid, Node::decode(&cid, data)?))
                }
            })
            .buffered(LIST_WINDOW)
            .collect()
            .await;
        let mut dirs = Vec::new();
        for item in fetched {
            let (name, cid, child) = item?;
            let mut child_path = path.to_vec();
            child_path.push(name);
            if child.is_directory() {
                dirs.push((child_path, child));
            } else if let Some(len) = child.file_size() {
                let source = self.source(&child_path, Some(Resolved { cid, node: child }));
                files.push(Entry::new(child_path, Some(len), source));
            } else {
                tracing::warn!(path = %child_path.join("/"), "skipping a symlink");
            }
        }
        Ok((files, dirs))
    }

    /// A source for the entry at `path` below the listed directory.
    fn source(&self, path: &[String], resolved: Option<Resolved>) -> dlm_core::BoxSource {
        let mut address = self.address.clone();
        address.path.extend(path.iter().cloned());
        Arc::new(IpfsSource::with_session(
            self.session.clone(),
            address,
            resolved,
        ))
    }
}
