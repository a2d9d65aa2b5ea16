package redis

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/redis/redistest"
	"github.com/hotzone/hotzone/store/storetest"
)

// TestConformance runs the storage contract's suite against a real
// cluster of three primaries with a replica each. Subtests share the
// cluster, each under a key prefix of its own; a reopen with the same t
// finds its data again under the same prefix.
func TestConformance(t *testing.T) {
	c := redistest.Start(t, 3, 1)
	var (
		prefixes sync.Map // *testing.T -> prefix
		n        atomic.Int64
	)
	storetest.Run(t, func(t *testing.T, now func() time.Time) hotzone.Storage {
		t.Helper()
		p, ok := prefixes.Load(t)
		if !ok {
			p = "t" + strconv.FormatInt(n.Add(1), 10)
			prefixes.Store(t, p)
		}
		key := sha256.Sum256([]byte(t.Name()))
		db, err := Open(t.Context(), c.Addrs, Options{Now: now, SecretKey: key[:], Prefix: p.(string), WaitReplicas: 1})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return db
	})
}
