package bolt

import (
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// committer shares a disk sync among small writes that come at once
// (device registrations, the decision of a ping): a write waits for the
// commit under way, and every write that arrived meanwhile goes into the
// next one together. Unlike bbolt's Batch it never waits for company on
// a timer: with one writer a write commits at once, with many each
// commit takes what gathered while the last one synced.
type committer struct {
	mu      sync.Mutex
	pending []*groupCall
	running bool
}

type groupCall struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

// group runs fn in a write transaction shared with other writers and
// returns once that transaction committed (fn's changes are durable) or
// failed. fn may be called more than once (when another fn of its group
// fails, each is run again in a transaction of its own), so it must set
// its results afresh on each call.
func (db *DB) group(fn func(*bbolt.Tx) error) error {
	c := &groupCall{fn: fn, err: make(chan error, 1)}
	db.commits.mu.Lock()
	db.commits.pending = append(db.commits.pending, c)
	start := !db.commits.running
	db.commits.running = true
	db.commits.mu.Unlock()
	if start {
		go db.commitLoop()
	}
	return <-c.err
}

// commitLoop commits what is pending until nothing is.
func (db *DB) commitLoop() {
	for {
		db.commits.mu.Lock()
		calls := db.commits.pending
		db.commits.pending = nil
		if len(calls) == 0 {
			db.commits.running = false
			db.commits.mu.Unlock()
			return
		}
		db.commits.mu.Unlock()
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			for _, c := range calls {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || len(calls) == 1 {
			for _, c := range calls {
				c.err <- err
			}
			continue
		}
		// One of them failed and took the others with it: each on its
		// own, so only the failing one fails.
		for _, c := range calls {
			c.err <- db.bolt.Update(c.fn)
		}
	}
}
