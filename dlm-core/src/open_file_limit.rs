//! The process's limit on open files (`RLIMIT_NOFILE`), raised for
//! downloads of many files at once.

/// Raises the soft limit on open files to the hard limit, as a program
/// that opens many files should at start (a torrent's files, many
/// downloads in a daemon; the usual soft limit is 1024). Returns the soft
/// limit now in force, `None` where it cannot be read. A library leaves
/// process limits alone, so the embedding program calls this: `dlm` and
/// `dlmd` do. [`MultiFileSink`](crate::MultiFileSink) keeps few files open
/// whatever the limit.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let raised = super::raise_open_file_limit();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(raised, now.current);
        assert_eq!(now.current, now.maximum);
    }
}
