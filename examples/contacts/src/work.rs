//! One call's unit of work: a database transaction that the default logic and the after handlers
//! share, and jobs to run once it has committed; plus the [`Background`] tasks those jobs become.
//!
//! The transaction is what makes a call all-or-nothing: the change, its audit row and its outbox
//! row commit together, and a call that ends in an error (a hook rejected it, an after handler
//! failed) rolls all of it back. Jobs that reach outside the database (an HTTP call to a third
//! party) wait for the commit, so the outside world never hears of a change that was rolled back.
//!
//! The framework has no background handlers yet: an after handler queues a job here instead, and
//! the service runs it on [`Background`], which shutdown waits for.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use hooks::HookError;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use tokio::task::JoinSet;

use crate::db;

/// A job to run in the background.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Tasks that run after their request has been answered; shutdown waits for them.
#[derive(Clone, Default)]
pub struct Background {
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

impl Background {
    /// Run `job` in the background.
    pub fn spawn(&self, job: Job) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the tasks that are done, so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(job);
    }

    /// Wait until every task spawned so far has finished.
    pub async fn drain(&self) {
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a background job failed");
            }
        }
    }
}

/// The unit of work of one call. Cheap to clone; the clones share the transaction.
#[derive(Clone)]
pub struct UnitOfWork {
    pool: SqlitePool,
    tx: Arc<tokio::sync::Mutex<Option<Transaction<'static, Sqlite>>>>,
    after_commit: Arc<Mutex<Vec<Job>>>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork").finish_non_exhaustive()
    }
}

/// The call's transaction, locked for one step. See [`UnitOfWork::tx`].
pub struct TxGuard<'a>(tokio::sync::MutexGuard<'a, Option<Transaction<'static, Sqlite>>>);

impl TxGuard<'_> {
    /// The transaction's connection.
    pub fn conn(&mut self) -> Result<&mut SqliteConnection, HookError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| HookError::internal("the call's transaction has already ended"))
    }
}

impl UnitOfWork {
    /// A unit of work on `pool`; the transaction begins with the first write.
    pub fn new(pool: SqlitePool) -> Self {
        UnitOfWork {
            pool,
            tx: Arc::new(tokio::sync::Mutex::new(None)),
            after_commit: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The call's transaction, begun on first use.
    pub async fn tx(&self) -> Result<TxGuard<'_>, HookError> {
        let mut guard = self.tx.lock().await;
        if guard.is_none() {
            *guard = Some(self.pool.begin().await.map_err(db::error)?);
        }
        Ok(TxGuard(guard))
    }

    /// Run `job` once the call has committed (never, if it rolls back).
    pub fn after_commit(&self, job: impl Future<Output = ()> + Send + 'static) {
        self.after_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::pin(job));
    }

    /// End the call: commit when `result` is a success (and hand the queued jobs to
    /// `background`), roll back when it is an error. A failed commit becomes the result.
    pub async fn finish<T>(
        &self,
        result: Result<T, HookError>,
        background: &Background,
    ) -> Result<T, HookError> {
        let tx = self.tx.lock().await.take();
        let jobs = std::mem::take(
            &mut *self
                .after_commit
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        match result {
            Ok(value) => {
                if let Some(tx) = tx {
                    tx.commit().await.map_err(db::error)?;
                }
                for job in jobs {
                    background.spawn(job);
                }
                Ok(value)
            }
            Err(e) => {
                if let Some(tx) = tx
                    && let Err(rollback) = tx.rollback().await
                {
                    tracing::error!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Database;

    async fn count(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn write(work: &UnitOfWork) {
        let mut tx = work.tx().await.unwrap();
        sqlx::query("INSERT INTO outbox (at, topic, payload) VALUES (0, 't', '{}')")
            .execute(tx.conn().unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_error_result_rolls_back_every_write_and_drops_the_jobs() {
        let pool = db::connect(&Database::Memory).await.unwrap();
        let work = UnitOfWork::new(pool.clone());
        write(&work).await;
        let ran = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&ran);
        work.after_commit(async move { *flag.lock().unwrap() = true });
        let background = Background::default();
        let result: Result<(), _> = work
            .finish(Err(HookError::rejected("no")), &background)
            .await;
        assert!(result.is_err());
        background.drain().await;
        assert_eq!(count(&pool).await, 0);
        assert!(!*ran.lock().unwrap());
    }

    #[tokio::test]
    async fn a_success_commits_and_then_runs_the_jobs() {
        let pool = db::connect(&Database::Memory).await.unwrap();
        let work = UnitOfWork::new(pool.clone());
        write(&work).await;
        let ran = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&ran);
        work.after_commit(async move { *flag.lock().unwrap() = true });
        let background = Background::default();
        work.finish(Ok(()), &background).await.unwrap();
        background.drain().await;
        assert_eq!(count(&pool).await, 1);
        assert!(*ran.lock().unwrap());
    }
}
