// Package bolt is the embedded backend of hotzone's storage contract
// (hotzone.Storage): one bbolt file, hotzone.db, in the data directory.
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
// Every write goes to bbolt first and reaches memory only after the
// transaction commits, so a reader never sees what a crash could take
// back, with one documented exception: positions are written behind.
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
//   - Outbox leases live in memory (ledger.Leases): a restart drops them
//     all, which is what their expiry would do (everything unrecorded is
//     due again).
//   - A write syncs the disk; bbolt runs one write transaction at a
//     time. Concurrent pings that queue a notification share a commit
//     (bbolt's Batch); fan-out writes in chunks; the dispatcher records
//     results in groups. A single-device write (PUT /v1/devices) is one
//     sync of its own.
//   - Without a secret key, credentials can be neither stored nor read
//     (seal.ErrNoKey), and a file with credentials does not open.
//   - bbolt keeps the file as large as it ever grew: deleting frees pages
//     for reuse, it does not shrink the file.
package bolt
