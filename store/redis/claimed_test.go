package redis

import (
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// TestClaimedEntries: a claimed entry is handed back once; a claim
// never recorded is forgotten once its lease and the grace have passed
// by the claims' own clock.
func TestClaimedEntries(t *testing.T) {
	var c claimedEntries
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	entry := func(id string) map[string]claimedEntry {
		return map[string]claimedEntry{id: {raw: `{"id":"` + id + `"}`, n: hotzone.Notification{ID: id}}}
	}
	c.keep("0:a", now, now.Add(time.Minute), entry("n1"))
	c.keep("0:b", now, now.Add(time.Minute), entry("n2"))
	if e, ok := c.take("0:a", "n1"); !ok || e.n.ID != "n1" {
		t.Fatalf("take n1 = %+v, %v", e, ok)
	}
	if _, ok := c.take("0:a", "n1"); ok {
		t.Error("n1 handed back twice")
	}
	if _, ok := c.take("0:b", "n1"); ok {
		t.Error("n1 handed back under another claim")
	}
	// Past 0:b's lease and grace, the next claim sweeps it.
	later := now.Add(time.Minute + claimGrace + time.Second)
	c.keep("1:c", later, later.Add(time.Minute), entry("n3"))
	if _, ok := c.take("0:b", "n2"); ok {
		t.Error("an abandoned claim's entry outlived its lease and grace")
	}
	if _, ok := c.take("1:c", "n3"); !ok {
		t.Error("a live claim's entry was swept")
	}
	if len(c.m) != 0 {
		t.Errorf("%d claims left, want none", len(c.m))
	}
}
