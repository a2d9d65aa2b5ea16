// Package storetest is the conformance suite of the storage contract
// (hotzone.Storage): every rule the contract's comments promise, checked
// through the contract alone, so that each backend (bbolt in store/bolt,
// the Redis Cluster one to come) is held to the same behaviour. It is the
// one place a new backend is checked; a rule the service relies on and
// this suite does not check is a gap here, not a freedom of the backend.
//
// It imports the root package, geo and the standard library (testing
// among them); never a backend.
//
// # Using it
//
// A backend runs the suite from its own package test with an Opener:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) hotzone.Storage {
//			// Same t after a Close: reopen the same data (a restart).
//			// Any other t: fresh, empty data, e.g. a new t.TempDir()
//			// or a key prefix of its own on a shared cluster.
//			// The storage must use now as its clock, must be able to keep
//			// push credentials (configure a server key), and should be
//			// closed by a t.Cleanup that tolerates the suite having
//			// closed it already.
//		})
//	}
//
// Run runs each rule as a named subtest (OncePerEventConcurrent,
// OutboxLeases, Restart, …) with storage of its own, so one of them can
// be run alone with -run 'TestConformance/OutboxLeases'. Subtests drive
// time through a Clock the suite owns: storage must read the time only
// through the now it was opened with, and take the times it is handed
// (Event.StartsAt, Claim's now) as given. Run it with -race: several
// rules race goroutines against one storage on purpose.
//
// # What it checks
//
//   - Keys: the operator key generated once and replaced by the
//     environment's; manager keys issued, listed, touched and revoked,
//     revocation waking the store's watchers.
//   - Brands, policy and stores: the default policy; concurrent
//     read-modify-writes losing nothing; stores created or replaced,
//     listed by id and tag in pages, matched by FencesAt, the nearest
//     answered by FencesNear as circles; DeleteStore
//     ending the live event and revoking the store's keys.
//   - Devices: updates keeping created_at and token_at; out-of-order
//     positions; DevicesIn by fence and time; a token moving to the
//     device that registers it; invalid_token clearing only an older
//     registration; erasure removing everything of a device.
//   - Events: one live event per store under concurrent starts;
//     Idempotency-Key replays within IdempotencyWindow; EndEvent expiring
//     what is queued; listing with filters and pages; Changed.
//   - Decisions: once per device per event under 50 concurrent callers
//     and a racing fan-out; suppressed upgraded to queued; the queue
//     history a daily cap by local calendar day and a min interval are
//     decided on, across restarts.
//   - Outbox: two consumers draining a lane without a notification
//     handed out twice; a vanished consumer's work handed out again once
//     its lease has passed; late results under a lapsed, taken-over claim
//     dropped; retries waiting for NextAttempt; Release; lanes.
//   - Counts equal to a tally of the log, after a mixed workload and
//     after a concurrent one, however they are read.
//   - The log, credentials, Stats, isolation between brands, ErrNotFound
//     for every missing thing, and a restart keeping all of it.
//
// # Caveats
//
//   - Reads are checked as seen through the node that made the writes,
//     where the contract promises every write that returned. The suite
//     does not exercise ViewLag between nodes; a multi-node backend
//     needs its own test for that. Changed is waited on for at most ten
//     times ViewLag.
//   - Times are compared exactly, and they are whole seconds, except
//     Stats.OutboxOldest (to the millisecond) and a key's last use (to
//     the second).
//   - The suite keeps its own ids apart only per subtest: an Opener that
//     hands two subtests the same data makes them fail each other.
//   - A leak of goroutines or files is the Opener's to check (in its
//     Cleanup), as is a backend's own consistency check.
package storetest
