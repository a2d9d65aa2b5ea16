package poslog

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

func rec(brand, dev string, gen int64, lat float64, qual bool) Record {
	ts := time.Date(2026, 12, 6, 12, 0, 0, int(gen), time.UTC)
	r := Record{BrandID: brand, DeviceID: dev, Gen: gen, Position: hotzone.DevicePosition{Last: hotzone.Position{Lat: lat, Lon: -74.0060001, AccuracyM: 15.3, TS: ts}}}
	if qual {
		q := r.Position.Last
		q.Lat -= 1
		r.Position.Qualifying = &q
	}
	return r
}

func block(recs ...Record) *Block {
	var b Block
	for _, r := range recs {
		b.Add(r.BrandID, r.DeviceID, r.Gen, &r.Position)
	}
	return &b
}

func replay(t *testing.T, l *Log) []Record {
	t.Helper()
	var out []Record
	if err := l.Replay(func(r Record) { out = append(out, r) }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

// TestAppendReplayCompact: what is appended replays in order, across
// blocks and brands, after a reopen and after a compaction.
func TestAppendReplayCompact(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := []Record{rec("b1", "d1", 1, 40.7, true), rec("b2", "d1", 2, 41, false), rec("b1", "d2", 3, 42, true)}
	second := []Record{rec("b1", "d1", 4, 43, false)}
	if err := l.Append(block(first...)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(block(second...)); err != nil {
		t.Fatal(err)
	}
	if got := replay(t, l); len(got) != 4 {
		t.Fatalf("replayed %d records, want 4", len(got))
	}
	l.Close()
	l, _ = Open(dir)
	got := replay(t, l)
	// Records come back in the order they were added.
	want := []Record{first[0], first[1], first[2], second[0]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after a reopen:\n got %+v\nwant %+v", got, want)
	}
	if err := l.Compact(func(yield func(Record)) {
		for _, r := range want[1:] {
			yield(r)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if logBytes, snap := l.Sizes(); logBytes != 0 || snap == 0 {
		t.Fatalf("after compaction: log %d bytes, snapshot %d", logBytes, snap)
	}
	third := []Record{rec("b3", "x", 9, 1, true)}
	if err := l.Append(block(third...)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, _ = Open(dir)
	defer l.Close()
	// Order carries no meaning (positions carry their time): compare
	// as sets.
	key := func(a, b Record) int {
		return cmp.Or(strings.Compare(a.BrandID, b.BrandID), strings.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.Gen, b.Gen))
	}
	got = replay(t, l)
	wantAll := append(append([]Record(nil), want[1:]...), third...)
	slices.SortFunc(got, key)
	slices.SortFunc(wantAll, key)
	if !reflect.DeepEqual(got, wantAll) {
		t.Fatalf("snapshot then log:\n got %+v\nwant %+v", got, wantAll)
	}
}

// TestTornBlock: a block cut short by a crash is dropped, the blocks
// before it are kept, and the next append follows them.
func TestTornBlock(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	good := []Record{rec("b", "d1", 1, 10, true)}
	l.Append(block(good...))
	l.Append(block(rec("b", "d2", 2, 20, true)))
	l.Close()
	path := filepath.Join(dir, LogFile)
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-5); err != nil {
		t.Fatal(err)
	}
	l, _ = Open(dir)
	if got := replay(t, l); !reflect.DeepEqual(got, good) {
		t.Fatalf("after a torn block: %+v, want the first block only", got)
	}
	later := []Record{rec("b", "d3", 3, 30, false)}
	if err := l.Append(block(later...)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, _ = Open(dir)
	defer l.Close()
	if got := replay(t, l); !reflect.DeepEqual(got, append(append([]Record(nil), good...), later...)) {
		t.Fatalf("an append after a torn block: %+v", got)
	}
	// A damaged byte inside a block's payload fails its checksum.
	b := block(good...).Bytes()
	b[len(b)-1] ^= 1
	if n, err := readBlocks(bytesReader(b), func(Record) {}); err == nil || n != 0 {
		t.Fatalf("a damaged block read as good: %d, %v", n, err)
	}
}

func bytesReader(b []byte) *os.File {
	f, _ := os.CreateTemp("", "block")
	f.Write(b)
	f.Seek(0, 0)
	os.Remove(f.Name())
	return f
}

// FuzzDecodeBlock: no payload panics, and what decodes encodes back to
// the same records.
func FuzzDecodeBlock(f *testing.F) {
	for i := range 3 {
		b := block(rec("b", fmt.Sprint("d", i), int64(i), float64(i), i%2 == 0), rec("c", "e", -5, -90, true), rec("b", "x", 1, 1, false)).Bytes()
		f.Add(b[12:])
	}
	f.Add([]byte{1, 'b', 1, 0, 0, 0, 1, 'd', 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		var recs []Record
		if DecodeBlock(p, func(r Record) { recs = append(recs, r) }) != nil {
			return
		}
		var again []Record
		b := block(recs...).Bytes()
		if err := DecodeBlock(b[12:], func(r Record) { again = append(again, r) }); err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records became %d", len(recs), len(again))
		}
	})
}
