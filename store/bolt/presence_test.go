package bolt

import (
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

func TestPresenceCodec(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 123, time.UTC)
	p := hotzone.Presence{AsOf: at, Visits: []hotzone.Visit{
		{StoreID: "main-st", EnteredAt: at.Add(-time.Hour), SeenAt: at, Dwelled: true},
		{StoreID: "s2", EnteredAt: at, SeenAt: at, Outside: 1},
	}}
	got, err := decodePresence(appendPresence(nil, p))
	if err != nil {
		t.Fatal(err)
	}
	if !got.AsOf.Equal(p.AsOf) || len(got.Visits) != 2 || got.Visits[0] != p.Visits[0] || got.Visits[1] != p.Visits[1] {
		t.Errorf("decoded %+v, want %+v", got, p)
	}
	if _, err := decodePresence(append(appendPresence(nil, p), 0)); err == nil {
		t.Error("a record with a byte too many decoded")
	}
}

// FuzzDecodePresence: a damaged record never panics and decodes only
// into what encodes back the same.
func FuzzDecodePresence(f *testing.F) {
	at := time.Unix(1_800_000_000, 5)
	f.Add(appendPresence(nil, hotzone.Presence{AsOf: at, Visits: []hotzone.Visit{{StoreID: "s", EnteredAt: at, SeenAt: at, Dwelled: true}}}))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePresence(b)
		if err != nil {
			return
		}
		again, err := decodePresence(appendPresence(nil, p))
		if err != nil || !again.AsOf.Equal(p.AsOf) || len(again.Visits) != len(p.Visits) {
			t.Fatalf("%x decoded to %+v, which does not round-trip (%+v, %v)", b, p, again, err)
		}
	})
}
