package ledger

import (
	"encoding/binary"
	"testing"

	"github.com/hotzone/hotzone"
)

// TestCountsReadOldRecords: counts written before opens were counted
// (five numbers) read with no opens.
func TestCountsReadOldRecords(t *testing.T) {
	var old []byte
	for _, n := range []uint64{1, 2, 3, 4, 5} {
		old = binary.AppendUvarint(old, n)
	}
	c, err := decodeCounts(old)
	want := hotzone.Counts{DevicesInFence: 15, Queued: 1, Sent: 2, Suppressed: 3, Failed: 4, Expired: 5}
	if err != nil || c != want {
		t.Fatalf("five numbers read as %+v, %v; want %+v", c, err, want)
	}
	want.Opened = 7
	if c, err := decodeCounts(appendCounts(nil, want)); err != nil || c != want {
		t.Fatalf("round trip: %+v, %v; want %+v", c, err, want)
	}
}

// FuzzDecodeCounts: any bytes decode or fail cleanly, and what decodes
// encodes back to the same counts.
func FuzzDecodeCounts(f *testing.F) {
	f.Add(appendCounts(nil, hotzone.Counts{Queued: 1, Sent: 2, Opened: 3}))
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCounts(b)
		if err != nil {
			return
		}
		again, err := decodeCounts(appendCounts(nil, c))
		if err != nil || again != c {
			t.Fatalf("%x read as %+v, which encodes to %+v, %v", b, c, again, err)
		}
		if c.DevicesInFence != c.Queued+c.Sent+c.Suppressed+c.Failed+c.Expired {
			t.Fatalf("%x: devices_in_fence %d is not the sum of %+v", b, c.DevicesInFence, c)
		}
	})
}
