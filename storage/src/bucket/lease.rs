//! The compactor's lease: `compactor-lease.json` in the bucket names who compacts it and
//! until when. Only the store's atomic conditional writes decide who holds it:
//!
//! - taking a free lease is a create-if-absent (S3 `If-None-Match: *`; a no-clobber
//!   link on a filesystem): of two compactors started at once, exactly one succeeds;
//! - taking over an expired lease, and renewing, is a write conditional on the version
//!   read (S3 `If-Match: <ETag>`): a second taker, or a holder that lost the lease, gets a
//!   precondition failure. A filesystem bucket has no conditional overwrite: an expired
//!   lease is deleted, then created again, and a renewal rereads the holder first;
//! - the holder renews it while it works and deletes it when done.
//!
//! A holder that dies keeps the bucket locked until the lease expires (its duration,
//! five minutes by default).

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

use crate::db::now_ms;
use crate::error::{Result, StorageError};

/// The lease object, at the bucket's root.
pub const LEASE: &str = "compactor-lease.json";

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct LeaseFile {
    holder: String,
    /// Unix ms.
    acquired: i64,
    /// Unix ms.
    expires: i64,
}

/// A lease held on a bucket.
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    holder: String,
    ttl: Duration,
    version: UpdateVersion,
    acquired: i64,
}

fn path() -> Path {
    Path::from(LEASE)
}

impl Lease {
    /// Takes the lease for `holder` for `ttl`, or fails with [`StorageError::LeaseHeld`]
    /// when another holder's lease has not expired.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let now = now_ms();
        let body = LeaseFile {
            holder: holder.to_owned(),
            acquired: now,
            expires: now + ttl.as_millis() as i64,
        };
        let mut lease = Lease {
            store,
            holder: holder.to_owned(),
            ttl,
            version: UpdateVersion {
                e_tag: None,
                version: None,
            },
            acquired: now,
        };
        match lease.put(&body, PutMode::Create).await {
            Ok(()) => return Ok(lease),
            Err(StorageError::ObjectStore(object_store::Error::AlreadyExists { .. })) => {}
            Err(e) => return Err(e),
        }
        let (cur, version) = lease.read().await?;
        if cur.expires > now {
            return Err(StorageError::LeaseHeld {
                holder: cur.holder,
                until_ms: cur.expires,
            });
        }
        tracing::info!(previous = %cur.holder, "taking over an expired compactor lease");
        match lease.put(&body, PutMode::Update(version)).await {
            Ok(()) => Ok(lease),
            Err(StorageError::ObjectStore(object_store::Error::Precondition { .. })) => {
                let (cur, _) = lease.read().await?;
                Err(StorageError::LeaseHeld {
                    holder: cur.holder,
                    until_ms: cur.expires,
                })
            }
            Err(StorageError::ObjectStore(object_store::Error::NotImplemented { .. })) => {
                // A filesystem: delete the expired lease, then race for a new one.
                match lease.store.delete(&path()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                match lease.put(&body, PutMode::Create).await {
                    Ok(()) => Ok(lease),
                    Err(StorageError::ObjectStore(object_store::Error::AlreadyExists {
                        ..
                    })) => {
                        let (cur, _) = lease.read().await?;
                        Err(StorageError::LeaseHeld {
                            holder: cur.holder,
                            until_ms: cur.expires,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Extends the lease by its duration from now; fails with [`StorageError::LeaseLost`]
    /// when someone else holds it now.
    pub async fn renew(&mut self) -> Result<()> {
        let now = now_ms();
        let body = LeaseFile {
            holder: self.holder.clone(),
            acquired: self.acquired,
            expires: now + self.ttl.as_millis() as i64,
        };
        match self.put(&body, PutMode::Update(self.version.clone())).await {
            Ok(()) => Ok(()),
            Err(StorageError::ObjectStore(object_store::Error::Precondition { .. })) => {
                Err(StorageError::LeaseLost)
            }
            Err(StorageError::ObjectStore(object_store::Error::NotImplemented { .. })) => {
                let (cur, _) = self.read().await?;
                if cur.holder != self.holder {
                    return Err(StorageError::LeaseLost);
                }
                self.put(&body, PutMode::Overwrite).await
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (when it is still ours).
    pub async fn release(self) -> Result<()> {
        let (cur, _) = match self.read().await {
            Ok(c) => c,
            Err(StorageError::ObjectStore(object_store::Error::NotFound { .. })) => return Ok(()),
            Err(e) => return Err(e),
        };
        if cur.holder == self.holder {
            match self.store.delete(&path()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The holder's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    async fn put(&mut self, body: &LeaseFile, mode: PutMode) -> Result<()> {
        let bytes = serde_json::to_vec(body).map_err(|e| StorageError::Json {
            file: LEASE.into(),
            source: e,
        })?;
        let r = self
            .store
            .put_opts(&path(), PutPayload::from(bytes), mode.into())
            .await?;
        self.version = UpdateVersion {
            e_tag: r.e_tag,
            version: r.version,
        };
        Ok(())
    }

    async fn read(&self) -> Result<(LeaseFile, UpdateVersion)> {
        let r = self.store.get(&path()).await?;
        let version = UpdateVersion {
            e_tag: r.meta.e_tag.clone(),
            version: r.meta.version.clone(),
        };
        let bytes = r.bytes().await?;
        let f: LeaseFile = serde_json::from_slice(&bytes).map_err(|e| StorageError::Json {
            file: LEASE.into(),
            source: e,
        })?;
        Ok((f, version))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;

    async fn contest(store: Arc<dyn ObjectStore>) {
        // Many takers at once: exactly one wins.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                Lease::acquire(s, &format!("c{i}"), Duration::from_secs(60)).await
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(l) => won.push(l),
                Err(StorageError::LeaseHeld { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won.len(), 1);
        let mut l = won.pop().unwrap();
        l.renew().await.unwrap();
        l.release().await.unwrap();
        // Free again.
        let l2 = Lease::acquire(store.clone(), "next", Duration::from_millis(1))
            .await
            .unwrap();
        // Expired: taken over, and the old holder's renewal fails.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut l2 = l2;
        let l3 = Lease::acquire(store.clone(), "third", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(l2.renew().await, Err(StorageError::LeaseLost)));
        // The loser's release leaves the new holder's lease in place.
        l2.release().await.unwrap();
        assert!(matches!(
            Lease::acquire(store.clone(), "fourth", Duration::from_secs(60)).await,
            Err(StorageError::LeaseHeld { holder, .. }) if holder == "third"
        ));
        l3.release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_holder_in_memory() {
        contest(Arc::new(InMemory::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_holder_on_a_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        contest(Arc::new(
            LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        ))
        .await;
    }
}
