package api

import (
	"testing"

	"github.com/go-json-experiment/json"
)

// pingReference is the ping as the general strict decoder reads it.
type pingReference struct {
	DeviceID  *string  `json:"device_id"`
	Lat       *float64 `json:"lat"`
	Lon       *float64 `json:"lon"`
	AccuracyM *float64 `json:"accuracy_m"`
	TS        *string  `json:"ts"`
}

// FuzzDecodePing checks the hand-written ping decoder against the
// general strict decoder every other body goes through: both accept or
// both refuse, and what they accept reads the same.
func FuzzDecodePing(f *testing.F) {
	for _, s := range []string{
		`{"device_id":"d1","lat":40.7,"lon":-74,"accuracy_m":15}`,
		`{"device_id":"d1","lat":40.7,"lon":-74,"accuracy_m":15,"ts":"2026-11-22T10:00:00Z"}`,
		`{"lat":null}`, `null`, `{}`, `[]`, `{"LAT":1}`, `{"lat":1,"lat":2}`, `{"lat":1e400}`,
		`{"l\u0061t":1}`, `{"lat":"1"}`, `{"lat":1} x`, `{"lat":1}{}`, `{"device_id":1}`, `{"lat":-0}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := decodePing(data, "")
		var ref pingReference
		refErr := json.Unmarshal(data, &ref, strict)
		if (gotErr == nil) != (refErr == nil) {
			t.Fatalf("decodePing(%q) error = %v, reference error = %v", data, gotErr, refErr)
		}
		if gotErr != nil {
			return
		}
		sameS := func(a optString, b *string) bool { return a.ok == (b != nil) && (!a.ok || a.v == *b) }
		sameF := func(a optFloat, b *float64) bool { return a.ok == (b != nil) && (!a.ok || a.v == *b) }
		if !sameS(got.DeviceID, ref.DeviceID) || !sameS(got.TS, ref.TS) || !sameF(got.Lat, ref.Lat) || !sameF(got.Lon, ref.Lon) || !sameF(got.AccuracyM, ref.AccuracyM) {
			t.Fatalf("decodePing(%q) = %+v, reference %+v", data, got, ref)
		}
	})
}
