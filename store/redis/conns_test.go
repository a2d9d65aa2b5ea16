package redis

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone/store/redis/redistest"
)

// testIdleConnsClose: a burst of waited writes opens connections of its
// own on the primaries, at most waitedConns to each however large the
// burst; once idle for Options.IdleConns, all but keptConns per Redis
// node close, so a node's memory and the cluster's client count come
// back down after a fan-out.
func testIdleConnsClose(t *testing.T, c *redistest.Cluster, prefix string) {
	key := sha256.Sum256([]byte("test"))
	db, err := Open(t.Context(), c.Addrs, Options{SecretKey: key[:], Prefix: prefix, WaitReplicas: 1, IdleConns: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	// conns counts this DB's connections over the cluster, by the name
	// it gives them.
	conns := func() int {
		n := 0
		for _, node := range db.c.Nodes() {
			list, err := node.Do(ctx, node.B().ClientList().Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			n += strings.Count(list, " name=hotzone-"+prefix+" ")
		}
		return n
	}
	incr := newScript(`return redis.call('INCR', KEYS[1])`)
	before := conns()
	// 16 writes a shard at once over 32 shards' tags: each waits on a
	// connection of its own.
	tags := shardTags(prefix, "burst")
	var wg sync.WaitGroup
	for i := range 16 * len(tags) {
		wg.Go(func() {
			k := "{" + tags[i%len(tags)] + "}:n:" + strconv.Itoa(i)
			if err := db.execWaited(ctx, incr, []string{k}, nil).r.Error(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	peak := conns()
	if peak < before+12 {
		t.Fatalf("a burst of %d waited writes took %d connections to %d: the test needs it to open some", 16*len(tags), before, peak)
	}
	// Pools are per Redis node: up to waitedConns to each primary.
	if bound := 3*waitedConns + 2*len(c.Addrs); peak > bound {
		t.Errorf("a burst of %d waited writes opened %d connections; want at most %d", 16*len(tags), peak, bound)
	}
	// At most the pipelined one, a pub/sub one and keptConns per node stay.
	most := len(c.Addrs) * (keptConns + 2)
	deadline := time.Now().Add(10 * time.Second)
	for conns() > most {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections 10 s after a burst (%d at its end, %d before); want at most %d", conns(), peak, before, most)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
