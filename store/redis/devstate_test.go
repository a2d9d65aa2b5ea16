package redis

import (
	"strconv"
	"testing"
)

// TestStateCache: the cache holds about its capacity, keeps the devices
// used most recently, forgets on demand, and holds nothing when off.
func TestStateCache(t *testing.T) {
	var c stateCache
	const capacity = 64 * 100
	c.init(capacity)
	st := func(i int) *devState { return &devState{rv: strconv.Itoa(i)} }
	for i := range 10 * capacity {
		c.put("b", strconv.Itoa(i), st(i))
		// One device used all along stays however many come after it.
		if got := c.get("b", "kept"); i > 0 && (got == nil || got.rv != "kept") {
			t.Fatalf("after %d others, the device used all along is %+v", i, got)
		}
		if i == 0 {
			c.put("b", "kept", &devState{rv: "kept"})
		}
	}
	held := 0
	for i := range 10 * capacity {
		if s := c.get("b", strconv.Itoa(i)); s != nil {
			if s.rv != strconv.Itoa(i) {
				t.Fatalf("device %d holds %+v", i, s)
			}
			held++
		}
	}
	if held > capacity || held < capacity/4 {
		t.Errorf("holds %d of %d devices put, want at most its capacity %d and not far below", held, 10*capacity, capacity)
	}
	if c.get("b", strconv.Itoa(10*capacity-1)) == nil {
		t.Error("the device put last is gone")
	}
	c.forget("b", "kept")
	if c.get("b", "kept") != nil {
		t.Error("a forgotten device is still held")
	}
	if c.get("other", strconv.Itoa(10*capacity-1)) != nil {
		t.Error("a device of another brand with the same id is held")
	}

	var off stateCache
	off.init(0)
	off.put("b", "d", st(1))
	if off.get("b", "d") != nil {
		t.Error("a cache of capacity 0 holds a device")
	}
}

// TestStateEntry: a state answers its entry for its own event only.
func TestStateEntry(t *testing.T) {
	s, err := stateFrom("b", `{"id":"d","opt_in":true}`, "rv", "", "ev1", "n1", `{"status":"suppressed"}`)
	if err != nil || s == nil {
		t.Fatalf("stateFrom = %+v, %v", s, err)
	}
	if s.dev.BrandID != "b" || s.dev.ID != "d" || !s.dev.OptIn {
		t.Errorf("device = %+v", s.dev)
	}
	if nid, body := s.entryFor("ev1"); nid != "n1" || body == "" {
		t.Errorf("entry for its event = %q, %q", nid, body)
	}
	if nid, body := s.entryFor("ev2"); nid != "" || body != "" {
		t.Errorf("entry for another event = %q, %q; want none", nid, body)
	}
	if s, err := stateFrom("b", "", "", "", "", "", ""); s != nil || err != nil {
		t.Errorf("an unknown device's state = %+v, %v; want none", s, err)
	}
	if _, err := stateFrom("b", "{", "", "", "", "", ""); err == nil {
		t.Error("a broken record decoded")
	}
}
