package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// logBatch is how many members a page reads from each shard's index at
// a time (each an entry or a run of them: see runs.go).
const logBatch = 64

// logPicks bounds the entries one step of a page reads: a shard's
// members in hand may stand for thousands of entries.
const logPicks = 256

// Notifications lists a page of a brand's log, newest first. A device's
// entries come from its shard; otherwise the shards' indexes (the whole
// log, or one event's) are merged newest first, a batch at a time, and
// the entries read and filtered until the page is full.
func (db *DB) Notifications(ctx context.Context, brandID string, q hotzone.NotificationQuery) ([]hotzone.Notification, bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, false, notFound("brand")
	}
	keep := func(n *hotzone.Notification) bool {
		return (q.EventID == "" || n.EventID == q.EventID) && (q.DeviceID == "" || n.DeviceID == q.DeviceID) &&
			(q.Status == "" || n.Status == q.Status) && (q.Before == "" || n.ID < q.Before)
	}
	if q.DeviceID != "" {
		return db.deviceLog(ctx, brandID, q, keep)
	}
	index := ":li"
	if q.EventID != "" {
		index = ":le:" + q.EventID
	}
	type cursor struct {
		ids  []string // newest first
		max  string   // the next read's upper bound
		done bool
	}
	cur := make([]cursor, Shards)
	for i := range cur {
		cur[i].max = "+"
		if q.Before != "" {
			cur[i].max = "(" + q.Before
		}
	}
	var out []hotzone.Notification
	for {
		// Refill every shard that ran dry and is not done.
		var cmds []valkey.Completed
		var which []int
		for i := range cur {
			if len(cur[i].ids) == 0 && !cur[i].done {
				cmds = append(cmds, db.cmd("ZRANGE", []string{db.shard(brandID, i) + index}, cur[i].max, "-", "BYLEX", "REV",
					"LIMIT", "0", strconv.Itoa(logBatch)))
				which = append(which, i)
			}
		}
		rs, err := db.doMulti(ctx, cmds)
		if err != nil {
			return nil, false, fmt.Errorf("redis: log: %w", err)
		}
		for j, r := range rs {
			members, err := r.AsStrSlice()
			if err != nil && !valkey.IsValkeyNil(err) {
				return nil, false, fmt.Errorf("redis: log: %w", err)
			}
			c := &cur[which[j]]
			for _, m := range members {
				for _, id := range runEntries(m) {
					// A run read below the cursor's bound may begin
					// below it and go on past it.
					if q.Before == "" || id < q.Before {
						c.ids = append(c.ids, id)
					}
				}
			}
			if len(members) < logBatch {
				c.done = true
			}
			if len(members) > 0 {
				c.max = "(" + members[len(members)-1]
			}
		}
		// Take ids newest first while every shard that may hold a newer
		// one has one in hand.
		type pick struct {
			id    string
			shard int
		}
		var picks []pick
		for len(picks) < logPicks {
			best := -1
			blocked := false
			for i := range cur {
				if len(cur[i].ids) == 0 {
					if !cur[i].done {
						blocked = true
					}
					continue
				}
				if best < 0 || cur[i].ids[0] > cur[best].ids[0] {
					best = i
				}
			}
			if blocked || best < 0 {
				break
			}
			picks = append(picks, pick{cur[best].ids[0], best})
			cur[best].ids = cur[best].ids[1:]
		}
		// Read the picked entries, shard by shard, and keep them in order.
		byShard := map[int][]string{}
		for _, p := range picks {
			byShard[p.shard] = append(byShard[p.shard], p.id)
		}
		bodies := map[string]string{}
		var bcmds []valkey.Completed
		var bshards []int
		for s, ids := range byShard {
			bcmds = append(bcmds, db.cmd("HMGET", []string{db.shard(brandID, s) + ":n"}, ids...))
			bshards = append(bshards, s)
		}
		brs, err := db.doMulti(ctx, bcmds)
		if err != nil {
			return nil, false, fmt.Errorf("redis: log: %w", err)
		}
		for j, r := range brs {
			vals, err := strs(r)
			if err != nil {
				return nil, false, fmt.Errorf("redis: log: %w", err)
			}
			for k, id := range byShard[bshards[j]] {
				bodies[id] = vals[k]
			}
		}
		for _, p := range picks {
			raw := bodies[p.id]
			if raw == "" {
				continue // erased meanwhile
			}
			var n hotzone.Notification
			if err := decodeEntry(raw, &n); err != nil {
				return nil, false, fmt.Errorf("redis: notification %s: %w", p.id, err)
			}
			if !keep(&n) {
				continue
			}
			if q.Limit > 0 && len(out) == q.Limit {
				return out, true, nil
			}
			out = append(out, n)
		}
		finished := true
		for i := range cur {
			if len(cur[i].ids) > 0 || !cur[i].done {
				finished = false
			}
		}
		if finished {
			return out, false, nil
		}
	}
}

// deviceLog is one device's entries, from its shard.
func (db *DB) deviceLog(ctx context.Context, brandID string, q hotzone.NotificationQuery, keep func(*hotzone.Notification) bool) ([]hotzone.Notification, bool, error) {
	sh := db.devShard(brandID, q.DeviceID)
	m, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{sh + ":d:" + q.DeviceID})))
	if err != nil {
		return nil, false, fmt.Errorf("redis: log: %w", err)
	}
	ids := make([]string, 0, len(m))
	for f, id := range m {
		if strings.HasPrefix(f, "n:") {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, false, nil
	}
	vals, err := strs(db.do(ctx, db.cmd("HMGET", []string{sh + ":n"}, ids...)))
	if err != nil {
		return nil, false, fmt.Errorf("redis: log: %w", err)
	}
	var all []hotzone.Notification
	for i, raw := range vals {
		if raw == "" {
			continue
		}
		var n hotzone.Notification
		if err := decodeEntry(raw, &n); err != nil {
			return nil, false, fmt.Errorf("redis: notification %s: %w", ids[i], err)
		}
		if keep(&n) {
			all = append(all, n)
		}
	}
	slices.SortFunc(all, func(a, b hotzone.Notification) int { return strings.Compare(b.ID, a.ID) })
	if q.Limit > 0 && len(all) > q.Limit {
		return all[:q.Limit], true, nil
	}
	return all, false, nil
}
