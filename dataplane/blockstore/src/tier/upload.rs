//! The upload queue of a remote tier: durable pending markers, chunk- and file-level
//! dedup, bounded parallel uploads with retries, and the wait of `durability: remote`.
//!
//! Marker layout: `<state>/pending/<local block store>/<hex>` (empty files). One chunk
//! may be pending for several engines (each holds a local copy); it is uploaded once,
//! from whichever engine is registered, and all its markers go when it is confirmed.
//!
//! Each registered engine hears how many of its chunks are pending and whether uploads
//! are failing after every change of the queue ([`super::TierInner::publish`]), and
//! each confirmation: its writers wait on exactly that (see `crate::space`).
//!
//! `<state>/deferred/` holds markers of chunks whose upload an earlier version deferred
//! (the tails of files being written); they are staged at start ([`promote_deferred`]).
//! Flushes no longer defer: a flush of a file still being written leaves its end-of-data
//! tail uncut ([`crate::FlushKind::KeepTails`]).

use super::{TierInner, with_deadline};
use crate::error::{BlockError, Result, io_err};
use dittofs_types::{ContentHash, ObjectId};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longest wait for one PUT (the backend also bounds each attempt).
const PUT_DEADLINE: Duration = Duration::from_secs(600);
/// How long an item of an unregistered engine waits before being looked at again.
const UNREGISTERED_DELAY: Duration = Duration::from_secs(5);
/// Files whose ObjectID becomes known once their pending chunks are confirmed.
const MAX_OBJECT_WATCH: usize = 4096;

#[derive(Debug)]
struct Item {
    engines: BTreeSet<String>,
    not_before: Instant,
    attempts: u32,
    active: bool,
}

/// Pending uploads (in memory; the markers are the durable copy).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    items: HashMap<ContentHash, Item>,
    /// Items per engine (the number of items whose `engines` name it).
    per_engine: HashMap<String, u64>,
    /// Quiesced files waiting for their chunks: (ObjectID, chunks not yet confirmed).
    objects: Vec<(ObjectId, Vec<ContentHash>)>,
    pub(crate) last_error: Option<String>,
}

impl Queue {
    /// Reads the markers under `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Queue> {
        let mut q = Queue::default();
        let now = Instant::now();
        for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let sub = e.map_err(io_err(dir))?.path();
            let Some(engine) = sub.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !sub.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&sub).map_err(io_err(&sub))? {
                let path = f.map_err(io_err(&sub))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match ContentHash::from_hex(name) {
                    Ok(h) => q.add(h, &engine, now),
                    Err(_) => {
                        tracing::warn!(path = %path.display(), "unexpected file among pending uploads")
                    }
                }
            }
        }
        Ok(q)
    }

    fn add(&mut self, hash: ContentHash, engine: &str, now: Instant) {
        let added = self
            .items
            .entry(hash)
            .or_insert_with(|| Item {
                engines: BTreeSet::new(),
                not_before: now,
                attempts: 0,
                active: false,
            })
            .engines
            .insert(engine.to_owned());
        if added {
            *self.per_engine.entry(engine.to_owned()).or_default() += 1;
        }
    }

    /// Removes `hash` for every engine; returns those engines.
    fn remove(&mut self, hash: &ContentHash) -> BTreeSet<String> {
        let engines = self
            .items
            .remove(hash)
            .map(|it| it.engines)
            .unwrap_or_default();
        for e in &engines {
            self.uncount(e);
        }
        engines
    }

    /// Removes `hash` for `engine` only (its local copy is gone).
    fn remove_for(&mut self, hash: &ContentHash, engine: &str) {
        let Some(it) = self.items.get_mut(hash) else {
            return;
        };
        it.active = false;
        let removed = it.engines.remove(engine);
        if it.engines.is_empty() {
            self.items.remove(hash);
        }
        if removed {
            self.uncount(engine);
        }
    }

    fn uncount(&mut self, engine: &str) {
        if let Some(n) = self.per_engine.get_mut(engine) {
            *n = n.saturating_sub(1);
        }
    }

    /// Chunks pending for `engine`.
    pub(crate) fn pending_for(&self, engine: &str) -> u64 {
        self.per_engine.get(engine).copied().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn contains(&self, hash: &ContentHash) -> bool {
        self.items.contains_key(hash)
    }

    /// Every pending hash (for the GC's live set).
    pub(crate) fn hashes(&self) -> Vec<ContentHash> {
        self.items.keys().copied().collect()
    }

    /// Up to `n` due items whose engine is registered (marked active), and the time the
    /// next waiting item becomes due.
    fn pick(
        &mut self,
        now: Instant,
        n: usize,
        registered: &dyn Fn(&str) -> bool,
    ) -> (Vec<(ContentHash, String)>, Option<Instant>) {
        let mut out = Vec::new();
        let mut next: Option<Instant> = None;
        for (h, it) in self.items.iter_mut() {
            if it.active {
                continue;
            }
            if it.not_before > now {
                next = Some(next.map_or(it.not_before, |t| t.min(it.not_before)));
                continue;
            }
            if out.len() >= n {
                next = Some(now);
                continue;
            }
            match it.engines.iter().find(|e| registered(e)) {
                Some(e) => {
                    it.active = true;
                    out.push((*h, e.clone()));
                }
                None => it.not_before = now + UNREGISTERED_DELAY,
            }
        }
        (out, next)
    }
}

/// At start: every deferred tail left by a previous run becomes a pending upload.
pub(crate) fn promote_deferred(state_dir: &Path, pending_dir: &Path) -> Result<()> {
    let deferred = state_dir.join("deferred");
    if !deferred.is_dir() {
        return Ok(());
    }
    for e in std::fs::read_dir(&deferred).map_err(io_err(&deferred))? {
        let sub = e.map_err(io_err(&deferred))?.path();
        let Some(engine) = sub.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !sub.is_dir() {
            continue;
        }
        let target = pending_dir.join(&engine);
        std::fs::create_dir_all(&target).map_err(io_err(&target))?;
        for f in std::fs::read_dir(&sub).map_err(io_err(&sub))? {
            let path = f.map_err(io_err(&sub))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(hex) = name.split('.').next()
                && ContentHash::from_hex(hex).is_ok()
            {
                let p = target.join(hex);
                touch_marker(&p)?;
            }
        }
        fsync_dir(&target)?;
        std::fs::remove_dir_all(&sub).map_err(io_err(&sub))?;
    }
    Ok(())
}

fn marker(dir: &Path, engine: &str, hash: &ContentHash) -> PathBuf {
    dir.join(engine).join(hash.to_hex())
}

/// Creates the (empty) marker file `p` if it does not exist.
fn touch_marker(p: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map(|_| ())
        .map_err(io_err(p))
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

impl super::RemoteTier {
    /// Records that the chunks `hashes` (stored and durable in the local CAS of engine
    /// `engine`) must reach the remote; durable when this returns. Call it before the
    /// metadata referencing them is committed, holding `RemoteTier::flush_guard` (see [`super::binding`]).
    /// `object`: the file's ObjectID when the flush quiesced it (file-level dedup).
    pub(crate) async fn stage(
        &self,
        engine: &str,
        hashes: &[ContentHash],
        sizes: &[u64],
        object: Option<ObjectId>,
    ) -> Result<()> {
        let t = &self.inner;
        let mut to_mark = Vec::new();
        let mut seen = std::collections::HashSet::new();
        {
            let mut gc = t.gc.lock();
            if gc.active {
                gc.touched.extend(hashes.iter().copied());
            }
            let deleting = hashes.iter().any(|h| gc.deleting.contains(h));
            if let Some(oid) = object
                && !deleting
                && t.known_objects.lock().contains(&oid)
            {
                t.stats.dedup_files.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let q = t.queue.lock();
            let known = t.known.lock();
            for (i, h) in hashes.iter().enumerate() {
                if gc.deleting.contains(h) || !known.contains(h) {
                    let pending_here = q.items.get(h).is_some_and(|it| it.engines.contains(engine));
                    if !pending_here && seen.insert(*h) {
                        to_mark.push(*h);
                    }
                } else {
                    t.stats.dedup_known_chunks.fetch_add(1, Ordering::Relaxed);
                    let n = sizes.get(i).copied().unwrap_or(0);
                    t.stats.dedup_known_bytes.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        if !to_mark.is_empty() {
            let dir = t.pending_dir.join(engine);
            let parent = t.pending_dir.clone();
            let marks = to_mark.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                if !dir.is_dir() {
                    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                    fsync_dir(&parent)?;
                }
                for h in &marks {
                    let p = dir.join(h.to_hex());
                    touch_marker(&p)?;
                }
                fsync_dir(&dir)
            })
            .await
            .map_err(|e| BlockError::Task(e.to_string()))??;
        }
        {
            let mut q = t.queue.lock();
            let now = Instant::now();
            for h in &to_mark {
                q.add(*h, engine, now);
            }
            if let Some(oid) = object {
                let waiting: Vec<ContentHash> =
                    hashes.iter().filter(|h| q.contains(h)).copied().collect();
                if waiting.is_empty() {
                    t.known_objects.lock().insert(oid);
                } else {
                    if q.objects.len() >= MAX_OBJECT_WATCH {
                        q.objects.remove(0);
                    }
                    q.objects.push((oid, waiting));
                }
            }
        }
        if !to_mark.is_empty() {
            t.publish();
            t.wake.notify_one();
        }
        Ok(())
    }

    /// `durability: remote`: returns once every chunk in `hashes` is confirmed on the
    /// remote. Chunks neither known nor pending (e.g. after a restart) are staged for
    /// engine `engine` first (the uploader then confirms them with a HEAD). After the
    /// tier's commit timeout: [`BlockError::RemotePending`] (retry later; nothing lost).
    pub(crate) async fn wait_remote(&self, engine: &str, hashes: &[ContentHash]) -> Result<()> {
        let t = &self.inner;
        let unknown: Vec<ContentHash> = {
            let q = t.queue.lock();
            let known = t.known.lock();
            hashes
                .iter()
                .filter(|h| !known.contains(h) && !q.contains(h))
                .copied()
                .collect()
        };
        if !unknown.is_empty() {
            self.stage(engine, &unknown, &[], None).await?;
        }
        let deadline = tokio::time::Instant::now() + t.cfg.commit_timeout;
        loop {
            let notified = t.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let missing = {
                let known = t.known.lock();
                hashes.iter().filter(|h| !known.contains(h)).count()
            };
            if missing == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let why = t.queue.lock().last_error.clone();
                return Err(BlockError::RemotePending(format!(
                    "{missing} of {} chunks not confirmed by remote {:?} within {} s{}",
                    hashes.len(),
                    t.name,
                    t.cfg.commit_timeout.as_secs(),
                    why.map(|w| format!(" (last upload error: {w})"))
                        .unwrap_or_default()
                )));
            }
        }
    }

    /// Whether the queue is empty (tests, shutdown reporting).
    pub fn pending(&self) -> usize {
        self.inner.queue.lock().len()
    }

    /// Waits until nothing is pending or `max` elapsed; returns what is still pending.
    pub async fn drain(&self, max: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.inner.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let n = self.pending();
            if n == 0 || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending();
            }
        }
    }
}

enum Outcome {
    /// On the remote; `Some(bytes)` when this call uploaded it.
    Confirmed(Option<u64>),
    /// Not on the remote and no longer in the local CAS of that engine.
    Gone,
    Retry(String),
}

/// The uploader task: starts due items up to the parallelism bound, applies outcomes.
pub(crate) async fn run(t: Arc<TierInner>) {
    let mut set: tokio::task::JoinSet<(ContentHash, String, Outcome)> = tokio::task::JoinSet::new();
    loop {
        let now = Instant::now();
        let free = t.cfg.upload_parallelism.saturating_sub(set.len());
        let (picks, next) = {
            let engines = t.engines.lock();
            let registered = |e: &str| engines.contains_key(e);
            t.queue.lock().pick(now, free, &registered)
        };
        for (hash, engine) in picks {
            let t2 = t.clone();
            set.spawn(async move {
                let o = upload_one(&t2, hash, &engine).await;
                (hash, engine, o)
            });
        }
        let sleep = next.map_or(Duration::from_secs(5), |d| d.saturating_duration_since(now));
        tokio::select! {
            _ = t.stop.cancelled() => {
                set.abort_all();
                return;
            }
            Some(r) = set.join_next(), if !set.is_empty() => match r {
                Ok((hash, engine, o)) => apply(&t, hash, &engine, o),
                Err(e) => tracing::error!(error = %e, "upload task failed"),
            },
            _ = t.wake.notified() => {}
            _ = tokio::time::sleep(sleep.max(Duration::from_millis(10))) => {}
        }
    }
}

fn apply(t: &TierInner, hash: ContentHash, engine: &str, o: Outcome) {
    match o {
        Outcome::Confirmed(uploaded) => {
            if let Some(n) = uploaded {
                t.stats.uploaded_chunks.fetch_add(1, Ordering::Relaxed);
                t.stats.uploaded_bytes.fetch_add(n, Ordering::Relaxed);
            } else {
                t.stats.dedup_head_chunks.fetch_add(1, Ordering::Relaxed);
            }
            t.mark_known(hash);
            let engines = {
                let mut q = t.queue.lock();
                let engines = q.remove(&hash);
                let known = t.known.lock();
                let mut done = Vec::new();
                q.objects.retain_mut(|(oid, hs)| {
                    hs.retain(|h| !known.contains(h));
                    if hs.is_empty() {
                        done.push(*oid);
                    }
                    !hs.is_empty()
                });
                drop(known);
                t.known_objects.lock().extend(done);
                if let Some(e) = q.last_error.take() {
                    tracing::info!(tier = %t.name, pending = q.len(), previous_error = %e,
                        "uploads succeed again");
                }
                engines
            };
            for e in &engines {
                remove_marker(&t.pending_dir, e, &hash);
            }
            t.confirmed.notify_waiters();
            t.publish();
            for e in &engines {
                if let Some(eng) = t.engine(e) {
                    eng.space().upload_confirmed();
                }
            }
        }
        Outcome::Gone => {
            remove_marker(&t.pending_dir, engine, &hash);
            t.queue.lock().remove_for(&hash, engine);
            t.publish();
            tracing::debug!(%hash, engine, "pending chunk gone from the local tier: dropped");
        }
        Outcome::Retry(why) => {
            t.stats.upload_retries.fetch_add(1, Ordering::Relaxed);
            let mut q = t.queue.lock();
            if let Some(it) = q.items.get_mut(&hash) {
                it.active = false;
                it.attempts = it.attempts.saturating_add(1);
                let exp = it.attempts.min(16);
                let delay = t
                    .cfg
                    .min_backoff
                    .saturating_mul(1u32 << exp.min(10))
                    .min(t.cfg.max_backoff);
                it.not_before = Instant::now() + delay;
                tracing::debug!(%hash, attempts = it.attempts, retry_in_ms = delay.as_millis() as u64,
                    error = %why, "upload failed; will retry");
            }
            // One warning per outage, not one per chunk (the status shows the latest).
            if q.last_error.is_none() {
                tracing::warn!(tier = %t.name, pending = q.len(), error = %why,
                    "uploads failing; retrying with backoff (data is safe on the local tier)");
            }
            q.last_error = Some(why);
            drop(q);
            t.publish();
        }
    }
}

fn remove_marker(dir: &Path, engine: &str, hash: &ContentHash) {
    let p = marker(dir, engine, hash);
    if let Err(e) = std::fs::remove_file(&p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove a pending-upload marker");
    }
}

async fn upload_one(t: &TierInner, hash: ContentHash, engine: &str) -> Outcome {
    if t.known.lock().contains(&hash) {
        return Outcome::Confirmed(None);
    }
    if t.gc.lock().deleting.contains(&hash) {
        // The GC is deleting this object right now: upload once that is done.
        return Outcome::Retry("remote GC is deleting this chunk".into());
    }
    let Some(eng) = t.engine(engine) else {
        return Outcome::Retry(format!("local block store {engine:?} is not attached"));
    };
    let cas_len = {
        let e = eng.clone();
        tokio::task::spawn_blocking(move || e.cas().chunk_len(&hash)).await
    };
    let local_len = match cas_len {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Outcome::Retry(e.to_string()),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let head = with_deadline(
        t.cfg.read_deadline,
        || format!("HEAD of chunk {hash}"),
        t.remote.head(&hash),
    )
    .await;
    match head {
        Ok(Some(info)) if local_len.is_none_or(|n| n == info.size) => {
            return Outcome::Confirmed(None);
        }
        Ok(Some(info)) => {
            tracing::warn!(%hash, remote = info.size, local = ?local_len,
                "remote object has the wrong length: uploading it again");
        }
        Ok(None) => {}
        Err(e) => return Outcome::Retry(e.to_string()),
    }
    if local_len.is_none() {
        return Outcome::Gone;
    }
    let read = {
        let e = eng.clone();
        tokio::task::spawn_blocking(move || e.cas().read_chunk(&hash)).await
    };
    let data = match read {
        Ok(Ok(d)) => bytes::Bytes::from(d),
        Ok(Err(BlockError::NotFound { .. })) => return Outcome::Gone,
        Ok(Err(e)) => {
            tracing::error!(%hash, error = %e, "cannot read a chunk to upload it");
            return Outcome::Retry(e.to_string());
        }
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let n = data.len() as u64;
    match with_deadline(
        PUT_DEADLINE,
        || format!("upload of chunk {hash}"),
        t.remote.put(&hash, data),
    )
    .await
    {
        Ok(()) => Outcome::Confirmed(Some(n)),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}
