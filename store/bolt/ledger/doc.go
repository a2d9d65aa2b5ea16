// Package ledger is the events' and the delivery log's layout in bbolt:
// the events with the live one per store and the idempotency keys of
// their starts, the log entries (one per device per event) in their
// binary form, the once-per-event index, the outbox, each device's queue
// history and each event's counts. Its functions work inside a transaction the caller (store/bolt)
// opens, so a decision, an expiry, an erasure or a recorded result
// commits together with the rest of what the caller writes.
//
// It imports the root package and bbolt only; it knows nothing of
// brands, stores, devices or events beyond the ids and values it is
// given.
//
// # Caveats
//
//   - Every function needs a transaction that can write, except List,
//     Lanes, Scan, Stats, Counts, Event, Events, Live, IsLive and
//     EventIDs, which also take a read-only one.
//   - Values are cut from a per-Writer slab that bbolt keeps referencing
//     until the transaction ends: a Writer lives no longer than its
//     transaction.
//   - Expire and Release walk the brand's (or the lane's) outbox: their
//     cost grows with what is queued, not with the log.
//   - Erase looks a device up in each of the events it is given: its
//     cost grows with the brand's events.
package ledger
