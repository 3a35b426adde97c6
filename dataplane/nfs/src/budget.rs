//! Memory bounds of the server: what calls and replies may hold while they wait.
//!
//! A call reserves, before it runs, the bytes of its record plus the largest reply it
//! can produce ([`crate::proc3::reply_bound`], [`crate::proc4::reply_bound`]), first
//! from its connection's budget, then from the server's. The record's share is given back once the call has run; the
//! reply's travels with the reply and is given back once the reply is written to the
//! socket. A connection whose client does not read its replies therefore stops being
//! read as soon as its budget is spent (its calls wait for room, its reader for call
//! slots), and all connections together hold at most the server's budget of records
//! and replies, whatever the number of connections.
//!
//! Invariants: reservations are taken per connection before the server-wide one (a
//! connection never holds server budget while waiting for its own), each in one
//! acquisition, and released only by dropping their permits, so a connection that is
//! closed gives everything back.

use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where a connection's reservations come from.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    conn: Arc<Semaphore>,
    global: Arc<Semaphore>,
    /// Capacity of `conn` (a reservation never asks for more).
    conn_bytes: u32,
    /// Bytes reserved right now, server-wide (a metric).
    held: Gauge,
}

/// Bytes reserved from both budgets; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    conn: OwnedSemaphorePermit,
    global: OwnedSemaphorePermit,
    held: Gauge,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.held.dec_by(self.conn.num_permits() as i64);
    }
}

impl Budget {
    /// A connection's budget of `conn_bytes`, drawing also on the server's `global`;
    /// `held` counts the bytes reserved.
    pub(crate) fn new(conn_bytes: u32, global: Arc<Semaphore>, held: Gauge) -> Budget {
        Budget {
            conn: Arc::new(Semaphore::new(conn_bytes as usize)),
            global,
            conn_bytes,
            held,
        }
    }

    /// Waits until `bytes` (capped at the connection's whole budget) are free in both
    /// budgets and takes them; `None` if a budget was closed.
    pub(crate) async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let n = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .min(self.conn_bytes);
        let conn = self.conn.clone().acquire_many_owned(n).await.ok()?;
        let global = self.global.clone().acquire_many_owned(n).await.ok()?;
        self.held.inc_by(i64::from(n));
        Some(Reservation {
            conn,
            global,
            held: self.held.clone(),
        })
    }

    /// Bytes of the connection's budget not reserved right now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.conn.available_permits()
    }
}

impl Reservation {
    /// Gives back all but `bytes` of the reservation (what the reply still needs).
    pub(crate) fn keep(mut self, bytes: usize) -> Reservation {
        let n = bytes.min(self.conn.num_permits());
        match (self.conn.split(n), self.global.split(n)) {
            (Some(conn), Some(global)) => Reservation {
                conn,
                global,
                held: self.held.clone(),
            },
            _ => self,
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.conn.num_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn connections_wait_for_room_and_give_it_back() {
        let global = Arc::new(Semaphore::new(300));
        let held = Gauge::default();
        let a = Budget::new(200, global.clone(), held.clone());
        let b = Budget::new(200, global.clone(), held.clone());
        let r1 = a.reserve(150).await.unwrap();
        assert_eq!((r1.bytes(), a.available()), (150, 50));
        // a's budget is nearly spent: the next reservation waits for it
        let blocked = tokio::time::timeout(Duration::from_millis(50), a.reserve(100)).await;
        assert!(blocked.is_err(), "reserved past the connection's budget");
        // b fits in its own budget but not in what a left of the server's
        let r2 = b.reserve(120).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), b.reserve(60)).await;
        assert!(blocked.is_err(), "reserved past the server's budget");
        // keeping the reply's share gives the record's back at once
        let r1 = r1.keep(30);
        assert_eq!((r1.bytes(), a.available()), (30, 170));
        let r3 = b.reserve(60).await.unwrap();
        assert_eq!(held.get(), 30 + 120 + 60);
        drop((r1, r2, r3));
        assert_eq!(global.available_permits(), 300);
        assert_eq!(held.get(), 0);
        // one reservation never asks for more than the whole connection budget
        assert_eq!(a.reserve(10_000).await.unwrap().bytes(), 200);
    }
}
