package redis

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
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

// TestUnpackPos: what packPos writes reads back the same; anything
// else is refused.
func TestUnpackPos(t *testing.T) {
	for _, p := range []hotzone.Position{
		{Lat: 40.7128, Lon: -74.006, AccuracyM: 12.5, TS: time.Unix(1_800_000_000, 123_456_789).UTC()},
		{Lat: -90, Lon: 180, AccuracyM: 0, TS: time.Unix(0, 1).UTC()},
		{Lat: 1e-7, Lon: -1e-9, AccuracyM: 1e6, TS: time.Unix(4_000_000_000, 0).UTC()},
	} {
		got, ok := unpackPos(packPos(p))
		if !ok || !samePacked(got, p) {
			t.Errorf("unpackPos(packPos(%+v)) = %+v, %v", p, got, ok)
		}
	}
	for _, s := range []string{"", "1 2 3", "1 2 3 4 5", "1  2 3 4", " 1 2 3 4", "1 2 3 4 ", "a 2 3 4", "1 2 3 4.5", "1\t2 3 4"} {
		if p, ok := unpackPos(s); ok {
			t.Errorf("unpackPos(%q) = %+v, want refused", s, p)
		}
	}
}

// FuzzUnpackPos: any string is read without a panic, and what is read
// packs back to a string that reads the same.
func FuzzUnpackPos(f *testing.F) {
	f.Add("40.7128 -74.006 12.5 1800000000123456789")
	f.Add("1 2 3")
	f.Add("NaN Inf -Inf 0")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := unpackPos(s)
		if !ok {
			return
		}
		if math.IsNaN(p.Lat) || math.IsNaN(p.Lon) || math.IsNaN(p.AccuracyM) {
			return // NaN is never equal to itself
		}
		if p.TS.UnixNano() < 0 {
			return // packPos spells times since 1970 only, as positions are
		}
		again, ok := unpackPos(packPos(p))
		if !ok || !samePacked(again, p) {
			t.Fatalf("%q read as %+v, which packs to %q and reads back as %+v, %v", s, p, packPos(p), again, ok)
		}
	})
}
