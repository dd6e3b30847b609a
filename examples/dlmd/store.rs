//! The job store: one SQLite file (rusqlite, bundled SQLite) in the state dir.
//!
//! Why SQLite over redb: the API lists jobs with filters and pages, orders the
//! queue by priority then age, and counts by state; those are one indexed SQL
//! query each, while a key-value store would need hand-kept secondary
//! indexes. WAL mode makes every committed change survive `kill -9`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use dlm_examples::api::{Job, JobFile, JobState};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JobRow {
    pub(crate) id: i64,
    /// The URL as given, credentials included (never shown by the API).
    pub(crate) url: String,
    pub(crate) mirrors: Vec<String>,
    pub(crate) dest: Option<String>,
    pub(crate) connections: u32,
    pub(crate) checksum: Option<String>,
    pub(crate) rate_limit: u64,
    pub(crate) priority: i32,
    pub(crate) state: JobState,
    pub(crate) error_kind: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) downloaded_bytes: u64,
    pub(crate) total_bytes: Option<u64>,
    /// The output file, relative to the download dir, once known.
    pub(crate) path: Option<String>,
    pub(crate) sha256: Option<String>,
    pub(crate) host: String,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    /// Protocol settings (`SECTION.KEY` → value).
    pub(crate) options: BTreeMap<String, String>,
    /// File selection (0-based indexes).
    pub(crate) selected: Option<Vec<usize>>,
    pub(crate) seed_ratio: Option<f64>,
    /// Seconds.
    pub(crate) seed_time: Option<u64>,
    /// `file` or `tree`, once resolved.
    pub(crate) kind: Option<String>,
    /// Per-file state of torrents and trees.
    pub(crate) files: Vec<JobFile>,
    pub(crate) uploaded_bytes: u64,
}

impl JobRow {
    /// A queued job for `url` on `host` with every option at its default
    /// (8 connections, no limit, priority 0); the store assigns the id and times.
    pub(crate) fn queued(url: String, host: String) -> Self {
        Self {
            id: 0,
            url,
            mirrors: Vec::new(),
            dest: None,
            connections: 8,
            checksum: None,
            rate_limit: 0,
            priority: 0,
            state: JobState::Queued,
            error_kind: None,
            error: None,
            downloaded_bytes: 0,
            total_bytes: None,
            path: None,
            sha256: None,
            host,
            created_ms: 0,
            updated_ms: 0,
            options: BTreeMap::new(),
            selected: None,
            seed_ratio: None,
            seed_time: None,
            kind: None,
            files: Vec::new(),
            uploaded_bytes: 0,
        }
    }

    /// The API view; `live` has the live rates and peers of a running job.
    pub(crate) fn to_api(&self, live: Live) -> Job {
        let size = self.total_bytes.unwrap_or(self.downloaded_bytes).max(1);
        let uploaded = live.uploaded_bytes.max(self.uploaded_bytes);
        Job {
            id: self.id,
            kind: self.kind.clone(),
            options: self.options.clone(),
            files: self.files.clone(),
            selected: self.selected.clone(),
            peers: live.peers,
            uploaded_bytes: uploaded,
            upload_rate_bytes_per_sec: live.upload_rate_bytes_per_sec,
            ratio: uploaded as f64 / size as f64,
            seed_ratio: self.seed_ratio,
            seed_time: self.seed_time,
            url: redact(&self.url),
            mirrors: self.mirrors.iter().map(|m| redact(m)).collect(),
            dest: self.dest.clone(),
            connections: self.connections,
            checksum: self.checksum.clone(),
            rate_limit: self.rate_limit,
            priority: self.priority,
            state: self.state,
            error_kind: self.error_kind.clone(),
            error: self.error.clone(),
            downloaded_bytes: self.downloaded_bytes,
            total_bytes: self.total_bytes,
            rate_bytes_per_sec: live.rate_bytes_per_sec,
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }
}

/// What a running job reports besides what is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) rate_bytes_per_sec: u64,
    pub(crate) peers: u32,
    pub(crate) uploaded_bytes: u64,
    pub(crate) upload_rate_bytes_per_sec: u64,
}

fn redact(u: &str) -> String {
    url::Url::parse(u).map_or_else(|_| u.to_string(), |u| dlm_core::redact_url(&u))
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Errors are SQLite's; the daemon turns them into `internal` API errors.
pub(crate) type StoreResult<T> = rusqlite::Result<T>;

/// The job table behind one connection.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    mirrors TEXT NOT NULL DEFAULT '[]',
    dest TEXT,
    connections INTEGER NOT NULL,
    checksum TEXT,
    rate_limit INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    downloaded_bytes INTEGER NOT NULL DEFAULT 0,
    total_bytes INTEGER,
    path TEXT,
    sha256 TEXT,
    host TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Columns added after the first schema: added to older databases on open.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("options", "TEXT NOT NULL DEFAULT '{}'"),
    ("selected", "TEXT"),
    ("seed_ratio", "REAL"),
    ("seed_time", "INTEGER"),
    ("kind", "TEXT"),
    ("files", "TEXT NOT NULL DEFAULT '[]'"),
    ("uploaded_bytes", "INTEGER NOT NULL DEFAULT 0"),
];

const COLUMNS: &str = "id, url, mirrors, dest, connections, checksum, rate_limit, priority, state, error_kind, \
                       error, downloaded_bytes, total_bytes, path, sha256, host, created_ms, updated_ms, \
                       options, selected, seed_ratio, seed_time, kind, files, uploaded_bytes";

fn from_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let mirrors: String = r.get(2)?;
    let state: String = r.get(8)?;
    Ok(JobRow {
        id: r.get(0)?,
        url: r.get(1)?,
        mirrors: serde_json::from_str(&mirrors).unwrap_or_default(),
        dest: r.get(3)?,
        connections: r.get(4)?,
        checksum: r.get(5)?,
        rate_limit: r.get::<_, i64>(6)? as u64,
        priority: r.get(7)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        error_kind: r.get(9)?,
        error: r.get(10)?,
        downloaded_bytes: r.get::<_, i64>(11)? as u64,
        total_bytes: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        path: r.get(13)?,
        sha256: r.get(14)?,
        host: r.get(15)?,
        created_ms: r.get::<_, i64>(16)? as u64,
        updated_ms: r.get::<_, i64>(17)? as u64,
        options: serde_json::from_str(&r.get::<_, String>(18)?).unwrap_or_default(),
        selected: r
            .get::<_, Option<String>>(19)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        seed_ratio: r.get(20)?,
        seed_time: r.get::<_, Option<i64>>(21)?.map(|v| v as u64),
        kind: r.get(22)?,
        files: serde_json::from_str(&r.get::<_, String>(23)?).unwrap_or_default(),
        uploaded_bytes: r.get::<_, i64>(24)? as u64,
    })
}

impl Store {
    /// Opens (creating) `path` in WAL mode.
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let present: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('jobs')")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for (name, decl) in ADDED_COLUMNS {
            if !present.iter().any(|p| p == name) {
                conn.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {name} {decl}"))?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a queued job; returns it with its id.
    pub(crate) fn insert(&self, mut job: JobRow) -> StoreResult<JobRow> {
        let now = now_ms();
        job.created_ms = now;
        job.updated_ms = now;
        job.state = JobState::Queued;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (url, mirrors, dest, connections, checksum, rate_limit, priority, state, host, \
             created_ms, updated_ms, options, selected, seed_ratio, seed_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                job.url,
                serde_json::to_string(&job.mirrors).unwrap_or_else(|_| "[]".into()),
                job.dest,
                job.connections,
                job.checksum,
                job.rate_limit as i64,
                job.priority,
                job.state.as_str(),
                job.host,
                now as i64,
                now as i64,
                serde_json::to_string(&job.options).unwrap_or_else(|_| "{}".into()),
                job.selected
                    .as_ref()
                    .and_then(|s| serde_json::to_string(s).ok()),
                job.seed_ratio,
                job.seed_time.map(|t| t as i64),
            ],
        )?;
        job.id = conn.last_insert_rowid();
        Ok(job)
    }

    pub(crate) fn get(&self, id: i64) -> StoreResult<Option<JobRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
    }

    /// One page of jobs with `id > after`, oldest first, optionally in one state.
    pub(crate) fn list(
        &self,
        state: Option<JobState>,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn();
        match state {
            Some(s) => {
                let mut q = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE state = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                ))?;
                q.query_map(params![s.as_str(), after, limit], from_row)?
                    .collect()
            }
            None => {
                let mut q = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))?;
                q.query_map(params![after, limit], from_row)?.collect()
            }
        }
    }

    /// Queued jobs in run order: priority (high first), then age.
    pub(crate) fn queued(&self, limit: u32) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY priority DESC, id LIMIT ?1"
        ))?;
        q.query_map([limit], from_row)?.collect()
    }

    /// Jobs per state.
    pub(crate) fn count(&self, state: JobState) -> StoreResult<u64> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE state = ?1",
                [state.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
    }

    /// Sets the state (and error) of a job.
    pub(crate) fn set_state(
        &self,
        id: i64,
        state: JobState,
        error: Option<(&str, &str)>,
    ) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET state = ?2, error_kind = ?3, error = ?4, updated_ms = ?5 WHERE id = ?1",
            params![id, state.as_str(), error.map(|e| e.0), error.map(|e| e.1), now_ms() as i64],
        )?;
        Ok(())
    }

    /// Records progress.
    pub(crate) fn set_progress(
        &self,
        id: i64,
        downloaded: u64,
        total: Option<u64>,
    ) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET downloaded_bytes = ?2, total_bytes = ?3, updated_ms = ?4 WHERE id = ?1",
            params![id, downloaded as i64, total.map(|t| t as i64), now_ms() as i64],
        )?;
        Ok(())
    }

    /// Records the output path once known.
    pub(crate) fn set_path(&self, id: i64, path: &str) -> StoreResult<()> {
        self.conn()
            .execute("UPDATE jobs SET path = ?2 WHERE id = ?1", params![id, path])?;
        Ok(())
    }

    /// Marks a job completed with its digest and length.
    pub(crate) fn complete(&self, id: i64, bytes: u64, sha256: Option<&str>) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET state = 'completed', downloaded_bytes = ?2, total_bytes = ?2, sha256 = ?3, \
             error_kind = NULL, error = NULL, updated_ms = ?4 WHERE id = ?1",
            params![id, bytes as i64, sha256, now_ms() as i64],
        )?;
        Ok(())
    }

    /// Records what the input resolved to and its files.
    pub(crate) fn set_files(&self, id: i64, kind: &str, files: &[JobFile]) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET kind = ?2, files = ?3 WHERE id = ?1",
            params![
                id,
                kind,
                serde_json::to_string(files).unwrap_or_else(|_| "[]".into())
            ],
        )?;
        Ok(())
    }

    /// Records the bytes uploaded so far.
    pub(crate) fn set_uploaded(&self, id: i64, bytes: u64) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET uploaded_bytes = ?2 WHERE id = ?1",
            params![id, bytes as i64],
        )?;
        Ok(())
    }

    /// Records a new file selection.
    pub(crate) fn set_selected(&self, id: i64, selected: &[usize]) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET selected = ?2, updated_ms = ?3 WHERE id = ?1",
            params![
                id,
                serde_json::to_string(selected).unwrap_or_else(|_| "[]".into()),
                now_ms() as i64
            ],
        )?;
        Ok(())
    }

    pub(crate) fn set_priority(&self, id: i64, priority: i32) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET priority = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, priority, now_ms() as i64],
        )?;
        Ok(())
    }

    pub(crate) fn set_rate_limit(&self, id: i64, rate: u64) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE jobs SET rate_limit = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, rate as i64, now_ms() as i64],
        )?;
        Ok(())
    }

    /// After a crash or restart: jobs that were running go back to the queue
    /// (their control files let them resume); jobs that were seeding had
    /// completed, and stay so (seeding does not outlive the daemon). Returns
    /// how many were queued again.
    pub(crate) fn requeue_running(&self) -> StoreResult<usize> {
        self.conn().execute(
            "UPDATE jobs SET state = 'completed', updated_ms = ?1 WHERE state = 'seeding'",
            params![now_ms() as i64],
        )?;
        self.conn().execute(
            "UPDATE jobs SET state = 'queued', updated_ms = ?1 WHERE state = 'running'",
            params![now_ms() as i64],
        )
    }

    pub(crate) fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
    }

    pub(crate) fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(url: &str, priority: i32) -> JobRow {
        JobRow {
            priority,
            ..JobRow::queued(url.into(), "h".into())
        }
    }

    #[test]
    fn queue_order_pages_and_requeue() {
        let dir = std::env::temp_dir().join(format!("dlmd-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("jobs.db")).unwrap();
        let a = store.insert(row("http://u:p@h/a", 0)).unwrap();
        let b = store.insert(row("http://h/b", 5)).unwrap();
        let c = store.insert(row("http://h/c", 0)).unwrap();
        let order: Vec<i64> = store.queued(10).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(order, vec![b.id, a.id, c.id]);
        assert_eq!(
            store
                .get(a.id)
                .unwrap()
                .unwrap()
                .to_api(Live::default())
                .url,
            "http://h/a"
        );
        store.set_state(a.id, JobState::Running, None).unwrap();
        let page = store.list(None, 0, 2).unwrap();
        assert_eq!(page.len(), 2);
        let next = store.list(None, page[1].id, 2).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(store.count(JobState::Running).unwrap(), 1);
        assert_eq!(store.requeue_running().unwrap(), 1);
        assert_eq!(store.count(JobState::Queued).unwrap(), 3);
        store.set_setting("max_active", "3").unwrap();
        store.set_setting("max_active", "4").unwrap();
        assert_eq!(store.setting("max_active").unwrap().as_deref(), Some("4"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
