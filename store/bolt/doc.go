// Package bolt is the embedded backend of hotzone's storage contract
// (hotzone.Storage): the bbolt file hotzone.db in the data directory,
// with the registration journal (devices-1.journal, devices-2.journal,
// store/wal) and the positions (positions.*, store/poslog) beside it.
// It is the default: one process, no other server to run.
//
// It owns the catalog's persistence (brands, keys, policies, stores,
// devices and their positions, credentials) and ties the pieces
// together: the events and the delivery log are laid out by its
// subpackage ledger, inside the same transactions; the device table with
// its positions and the position index are store/devices'; the views
// every backend keeps (brands and policies, keys, stores and fences,
// live events and their counts) are store/view's; credentials are
// sealed with store/seal. It imports the root package, geo and those.
//
// Every write is durable before it reaches memory, so a reader never
// sees what a crash could take back, with one documented exception:
// positions are written behind. Most writes commit to bbolt; device
// registrations commit to the journal (journal.go) and reach bbolt in
// checkpoints.
// storetest.Run checks it against every rule of the contract.
//
// # Caveats
//
//   - One process per data directory: bbolt locks its file, and Open
//     answers ErrLocked after a second when another process holds it.
//     Several nodes need the Redis Cluster backend.
//   - Opening reads every brand, key, store, live event, credential and
//     device (with its position) into memory, so start-up time and
//     memory grow with the number of devices; it never reads the
//     delivery log (event counts are kept as they change). A file of an
//     earlier version, which kept no counts, is counted once when first
//     opened.
//   - Positions are written behind: RecordPosition changes memory, and
//     RunWriteBehind (or Close) writes them in one transaction per flush
//     interval, so a crash loses up to one interval of positions, never
//     a device, store, key, event or queued notification.
//   - Presence (each device's open visits) lives in memory and is written
//     behind with the positions, appended to presence.log (store/kvlog)
//     rather than put in bbolt: pings entering and leaving fences at
//     random would rewrite B-tree pages on every flush. A crash loses at
//     most one flush interval of presence changes.
//   - Outbox leases live in memory (ledger.Leases): a restart drops them
//     all, which is what their expiry would do (everything unrecorded is
//     due again).
//   - A write syncs the disk; bbolt runs one write transaction at a
//     time. Concurrent pings that queue a notification share a commit
//     (bbolt's Batch); fan-out writes in chunks; the dispatcher records
//     results in groups. Registrations (PutDevice) share journal writes:
//     those that come while one is written go in the next, which, under
//     concurrency, waits up to 300 µs for as many as the last held. A
//     lone registration costs one journal write (one O_DIRECT|O_DSYNC
//     write where the file system allows it, else O_DSYNC).
//   - Until a checkpoint, registrations live twice: in the journal file
//     and in memory (the overlay, at most some 8,192 keys, plus what a
//     running checkpoint is applying). A crash between loses nothing:
//     Open replays the journal into bbolt before anything else.
//   - Erasing a device and registering many at once (PutDevices) write
//     bbolt directly: they apply the overlay in their own transaction
//     first, so each costs a checkpoint's work when the overlay is large.
//   - Without a secret key, credentials can be neither stored nor read
//     (seal.ErrNoKey), and a file with credentials does not open.
//   - bbolt keeps the file as large as it ever grew: deleting frees pages
//     for reuse, it does not shrink the file.
package bolt
