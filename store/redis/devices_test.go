package redis

import (
	"strconv"
	"testing"
)

// TestDevCache: a device added is known until forgotten, under its
// brand only; a part that fills starts over rather than grow.
func TestDevCache(t *testing.T) {
	var c devCache
	c.init()
	c.add("b1", "d1")
	c.add("b1", "d2")
	switch {
	case !c.has("b1", "d1") || !c.has("b1", "d2"):
		t.Fatal("a device added is not known")
	case c.has("b2", "d1"):
		t.Fatal("a device is known under another brand")
	case c.has("b1", "d3"):
		t.Fatal("a device never added is known")
	case c.has("b", "1d1"), c.has("b1d", "1"):
		t.Fatal("brand and device run together")
	}
	c.forget("b1", "d1")
	if c.has("b1", "d1") || !c.has("b1", "d2") {
		t.Fatal("forget took the wrong device")
	}
	defer func(n int) { devCacheMax = n }(devCacheMax)
	devCacheMax = 64 * devParts
	per := devCacheMax / devParts
	for i := range 3 * devCacheMax / 2 {
		c.add("b", strconv.Itoa(i))
	}
	total := 0
	for i := range c.parts {
		if n := len(c.parts[i].m); n > per {
			t.Fatalf("part %d holds %d devices, more than its %d", i, n, per)
		} else {
			total += n
		}
	}
	if total < devCacheMax/4 {
		t.Errorf("holds %d devices after %d added, far below its bound %d", total, 3*devCacheMax/2, devCacheMax)
	}
	if !c.has("b", strconv.Itoa(3*devCacheMax/2-1)) {
		t.Error("the device added last is not known")
	}
}
