// Package redis is the Redis Cluster backend of the storage contract
// (hotzone.Storage): any number of hotzone processes open the same
// cluster (Redis OSS 7 or Valkey) under the same key prefix and serve as
// one. It talks to the cluster through valkey-go, and keeps the same
// in-memory views every backend keeps (store/view), kept in step across
// nodes (sync.go).
//
// Where things live (the key layout is in db.go, the ledger's in
// ledger.go): a brand's catalog in one slot; its devices, their log,
// outbox and counts in Shards device shards whose hash tags spread over
// the slot space; qualifying positions also per grid cell; the operator
// key, brand list, versions and lanes in one global slot. Everything a
// step must change atomically shares a slot and is one Lua script;
// scripts check that what the Go side read is still there, so decide
// (policy in Go, time zones and all) may run again on a lost race.
//
// It also keeps what only a shared backend needs: fan-out leases
// (push.FanOutLeases), a send rate shared by every node
// (push.SendQuota), batched device reads for the dispatcher
// (push.DeviceBatch), and the delivery log's retention.
//
// It imports the root package, geo, store/view, store/seal and
// valkey-go; never another backend.
//
// # Caveats
//
//   - Replication is asynchronous. Options.WaitReplicas makes a queued
//     notification, a sent result and an event's start or end wait (at
//     most WaitTimeout) for replicas; everything else a failover may
//     lose in the instant before it (registrations, suppressed entries,
//     catalog changes), as README.md's "Running several nodes" says.
//   - Positions are written behind (FlushInterval; up to one interval
//     more, a second at most, while the node fans out: see fanningOut),
//     and a node's views lag another node's changes by up to Poll
//     (250 ms) when a published message is lost (ViewLag, 1 s, bounds
//     that).
//   - A decision for a device this node keeps the state of (see
//     stateCache: registered or seen here, up to Options.StateCache
//     devices) costs one round trip, the checked write with the WAIT
//     behind it when it queues; for another, or one whose state moved on
//     elsewhere, two (the read, or the refused write that answers the
//     state). A device this node saw notified for a live event costs
//     none.
//   - Lanes reads every shard's outbox size of every lane ever queued
//     to, every dispatcher scan (250 ms a node): fine for hundreds of
//     brands, not for many thousands.
//   - A brand's shard count (Shards) is fixed for the life of the data:
//     changing it would strand every device in its old shard.
//   - The view of a brand with many stores is reloaded store by store
//     as they change, but the poll reads the whole version hash: fine for
//     thousands of brands, not for millions.
package redis
