package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

func deviceSamples() []hotzone.Device {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	return []hotzone.Device{
		{ID: "a", BrandID: "b", Platform: hotzone.PlatformIOS, Timezone: "UTC", CreatedAt: at, UpdatedAt: at},
		{ID: "b:1.x", BrandID: "b", Platform: hotzone.PlatformAndroid, Provider: hotzone.ProviderFCM, Token: "tok:ÿ-1", TokenAt: at.Add(time.Second),
			OptIn: true, Timezone: "Europe/Berlin", Locale: "de-CH", Tags: []string{"persona:commuter", "loyalty:gold"}, CreatedAt: at, UpdatedAt: at.Add(time.Hour)},
		{ID: "c", BrandID: "b", Platform: hotzone.PlatformIOS, Provider: hotzone.ProviderAPNs, Token: "abcdef", TokenAt: at, OptIn: true, Timezone: "Pacific/Auckland",
			CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
}

func TestDeviceCodecRoundTrip(t *testing.T) {
	for _, d := range deviceSamples() {
		b := appendDevice(nil, &d)
		got, err := decodeDevice(d.BrandID, d.ID, b)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("%s: round trip = %+v, %v; want %+v", d.ID, got, err, d)
		}
		if at, err := deviceCreatedAt(b); err != nil || !at.Equal(d.CreatedAt) {
			t.Errorf("%s: created at = %v, %v", d.ID, at, err)
		}
		for n := range b {
			if _, err := decodeDevice("b", "x", b[:n]); err == nil {
				t.Errorf("%s: a record cut to %d bytes decoded", d.ID, n)
			}
		}
	}
}

// TestDeviceCodecReadsJSON: records earlier versions wrote still read.
func TestDeviceCodecReadsJSON(t *testing.T) {
	for _, d := range deviceSamples() {
		b, _ := json.Marshal(d)
		got, err := decodeDevice(d.BrandID, d.ID, b)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("%s: JSON = %+v, %v; want %+v", d.ID, got, err, d)
		}
		if at, err := deviceCreatedAt(b); err != nil || !at.Equal(d.CreatedAt) {
			t.Errorf("%s: created at from JSON = %v, %v", d.ID, at, err)
		}
	}
}

// FuzzDecodeDevice: any bytes decode to an error or to a device that
// survives its own round trip; nothing panics.
func FuzzDecodeDevice(f *testing.F) {
	for _, d := range deviceSamples() {
		f.Add(appendDevice(nil, &d))
	}
	f.Add([]byte(`{"platform":"ios"}`))
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDevice("b", "id", b)
		_, _ = deviceCreatedAt(b)
		if err != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		again, err := decodeDevice("b", "id", appendDevice(nil, &d))
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("decoded %x into %+v, whose round trip gives %+v, %v", b, d, again, err)
		}
	})
}
