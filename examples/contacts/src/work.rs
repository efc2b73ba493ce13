//! One call's unit of work: a database transaction that the default logic and the after handlers
//! share, and the call's outcome (committed or rolled back), which background handlers wait for.
//!
//! The transaction is what makes a call all-or-nothing: the change, its audit row and its outbox
//! row commit together, and a call that ends in an error (a hook rejected it, an after handler
//! returned an error, panicked or timed out: the runtime is built with `AfterFailure::Fail`,
//! [`crate::hooks_builder`]) rolls all of it back.
//!
//! The endpoint commits after `Hooks::run` has returned, because the after handlers write in the
//! same transaction. By then the runtime has already queued the call's background handlers, and
//! one of them may start before the commit. So a background handler that tells the outside world
//! about a change (the webhook) first waits for [`UnitOfWork::committed`]: it reports only what
//! was committed, and nothing of a call that rolled back.
//!
//! [`UnitOfWork::begin`] gives two halves: the [`UnitOfWork`] that handlers reach through the
//! context (cheap to clone; background handlers keep a clone in their detached context) and the
//! [`WorkGuard`] that the endpoint keeps and ends the call with. A guard dropped unfinished (the
//! client went away mid-call) rolls back.

use std::sync::Arc;

use hooks::HookError;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{Mutex, MutexGuard, watch};

use crate::db;

/// How a call's unit of work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running.
    Pending,
    /// Committed: its writes are visible to everyone.
    Committed,
    /// Rolled back: none of its writes happened.
    RolledBack,
}

type SharedTx = Arc<Mutex<Option<Transaction<'static, Sqlite>>>>;

/// The unit of work of one call, as handlers see it. Cheap to clone; the clones share the
/// transaction.
#[derive(Clone)]
pub struct UnitOfWork {
    pool: SqlitePool,
    tx: SharedTx,
    outcome: watch::Receiver<Outcome>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("outcome", &*self.outcome.borrow())
            .finish_non_exhaustive()
    }
}

/// The call's transaction, locked for one step. See [`UnitOfWork::tx`].
pub struct TxGuard<'a>(MutexGuard<'a, Option<Transaction<'static, Sqlite>>>);

impl TxGuard<'_> {
    /// The transaction's connection.
    pub fn conn(&mut self) -> Result<&mut SqliteConnection, HookError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| HookError::internal("the call's transaction has already ended"))
    }
}

impl UnitOfWork {
    /// A unit of work on `pool` (the transaction begins with the first write), and the guard
    /// that ends it.
    pub fn begin(pool: SqlitePool) -> (UnitOfWork, WorkGuard) {
        let (sender, outcome) = watch::channel(Outcome::Pending);
        let work = UnitOfWork {
            pool,
            tx: Arc::new(Mutex::new(None)),
            outcome,
        };
        let guard = WorkGuard {
            work: work.clone(),
            outcome: sender,
            finished: false,
        };
        (work, guard)
    }

    /// The call's transaction, begun on first use, as a write transaction ([`db::begin`]): what a
    /// handler reads in it before writing stays true until the commit.
    pub async fn tx(&self) -> Result<TxGuard<'_>, HookError> {
        let mut guard = self.tx.lock().await;
        if guard.is_none() {
            if *self.outcome.borrow() != Outcome::Pending {
                return Err(HookError::internal(
                    "the call's unit of work has already ended",
                ));
            }
            *guard = Some(db::begin(&self.pool).await?);
        }
        Ok(TxGuard(guard))
    }

    /// Roll back what the call has written so far, and go on without a transaction: a later
    /// [`tx`](Self::tx) begins a new one. For a call that answers success though a step of it
    /// failed, so that the step's first writes are not committed without the rest.
    pub async fn roll_back(&self) {
        let tx = self.tx.lock().await.take();
        if let Some(tx) = tx
            && let Err(e) = tx.rollback().await
        {
            tracing::error!(error = %e, "rollback failed");
        }
    }

    /// Wait until the call has ended; `true` when it committed, `false` when it rolled back
    /// (or its guard was dropped unfinished).
    pub async fn committed(&self) -> bool {
        let mut outcome = self.outcome.clone();
        match outcome.wait_for(|o| *o != Outcome::Pending).await {
            Ok(o) => *o == Outcome::Committed,
            Err(_) => false,
        }
    }
}

/// Ends a call's unit of work: [`WorkGuard::finish`] commits or rolls back; dropped unfinished,
/// it rolls back.
pub struct WorkGuard {
    work: UnitOfWork,
    outcome: watch::Sender<Outcome>,
    finished: bool,
}

impl std::fmt::Debug for WorkGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkGuard")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl WorkGuard {
    /// The unit of work this guard ends (what the default logic writes with).
    pub fn work(&self) -> UnitOfWork {
        self.work.clone()
    }

    /// End the call: commit when `result` is a success, roll back when it is an error. A failed
    /// commit becomes the result. Background handlers waiting on [`UnitOfWork::committed`] learn
    /// the outcome.
    pub async fn finish<T>(mut self, result: Result<T, HookError>) -> Result<T, HookError> {
        self.finished = true;
        let tx = self.work.tx.lock().await.take();
        let (result, outcome) = match result {
            Ok(value) => match tx {
                Some(tx) => match tx.commit().await {
                    Ok(()) => (Ok(value), Outcome::Committed),
                    Err(e) => (Err(db::error(e)), Outcome::RolledBack),
                },
                None => (Ok(value), Outcome::Committed),
            },
            Err(e) => {
                if let Some(tx) = tx
                    && let Err(rollback) = tx.rollback().await
                {
                    tracing::error!(error = %rollback, "rollback failed");
                }
                (Err(e), Outcome::RolledBack)
            }
        };
        self.outcome.send_replace(outcome);
        result
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The call was abandoned (its request was cancelled): drop the transaction now, which
        // rolls it back, rather than when the last background handler lets go of its context.
        if let Ok(mut tx) = self.work.tx.try_lock() {
            tx.take();
        }
        self.outcome.send_replace(Outcome::RolledBack);
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
    async fn an_error_result_rolls_back_every_write_and_says_so() {
        let pool = db::connect(&Database::Memory).await.unwrap();
        let (work, guard) = UnitOfWork::begin(pool.clone());
        write(&work).await;
        let waiting = tokio::spawn({
            let work = work.clone();
            async move { work.committed().await }
        });
        let result: Result<(), _> = guard.finish(Err(HookError::rejected("no"))).await;
        assert!(result.is_err());
        assert!(!waiting.await.unwrap());
        assert_eq!(count(&pool).await, 0);
    }

    #[tokio::test]
    async fn a_success_commits_and_says_so_to_whoever_waits() {
        let pool = db::connect(&Database::Memory).await.unwrap();
        let (work, guard) = UnitOfWork::begin(pool.clone());
        write(&work).await;
        let waiting = tokio::spawn({
            let work = work.clone();
            async move { work.committed().await }
        });
        guard.finish(Ok(())).await.unwrap();
        assert!(waiting.await.unwrap());
        assert!(work.committed().await, "the outcome stays known");
        assert_eq!(count(&pool).await, 1);
    }

    #[tokio::test]
    async fn an_abandoned_call_rolls_back_even_while_a_handler_still_holds_its_work() {
        let pool = db::connect(&Database::Memory).await.unwrap();
        let (work, guard) = UnitOfWork::begin(pool.clone());
        write(&work).await;
        drop(guard);
        assert!(!work.committed().await);
        // The in-memory pool has one connection: this only runs once the transaction is gone.
        assert_eq!(count(&pool).await, 0);
        assert!(work.tx().await.is_err(), "no new transaction after the end");
    }
}
