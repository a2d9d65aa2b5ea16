package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
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

// FuzzValidDeviceID: the hand-written check agrees with the contract's
// pattern on every input.
func FuzzValidDeviceID(f *testing.F) {
	for _, s := range []string{"d", "a.b:c-d_e", ".", "..", "", "é", "x y", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validDeviceID(id), validID(deviceIDPattern, id); got != want {
			t.Fatalf("validDeviceID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}

// FuzzBatchSplit: splitting a batch body finds exactly the pings the
// general strict decoder finds, and refuses exactly what it refuses.
func FuzzBatchSplit(f *testing.F) {
	for _, s := range []string{`{"pings":[]}`, `{"pings":[{"device_id":"d","lat":1,"lon":2,"accuracy_m":3}, 5, null]}`,
		`{"pings":null}`, `{}`, `{"pings":[],"x":1}`, `{"pi\u006egs":[1]}`, `{"pings":[1]} x`, `{"pings":[1],"pings":[2]}`, ` {"pings" : [ {} ] } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		bc := &batchCodec{body: append([]byte(nil), body...)}
		bc.d = jsontext.NewDecoder(&bc.r)
		err := bc.split()
		var req batchRequest
		want := decodeJSON(body, "", &req)
		if want == nil && req.Pings == nil {
			want = hotzone.Invalid("pings", "required")
		}
		if (err == nil) != (want == nil) {
			t.Fatalf("split(%q) = %v, the general decoder says %v", body, err, want)
		}
		if err != nil {
			return
		}
		if len(bc.spans) != len(req.Pings) {
			t.Fatalf("split(%q) found %d pings, the general decoder %d", body, len(bc.spans), len(req.Pings))
		}
		for i, sp := range bc.spans {
			if got := bc.body[sp[0]:sp[1]]; !bytes.Equal(got, req.Pings[i]) {
				t.Fatalf("split(%q): ping %d is %q, the general decoder has %q", body, i, got, req.Pings[i])
			}
		}
	})
}

// FuzzScanBatch: a batch body the one-pass scanner reads gives the pings
// that splitting it and decoding each ping gives.
func FuzzScanBatch(f *testing.F) {
	for _, s := range []string{`{"pings":[]}`, `{"pings":[{"device_id":"d","lat":1,"lon":2,"accuracy_m":3},{"lat":null}]}`,
		` { "pings" : [ { } , {"ts":"2026-11-22T10:00:00Z"} ] } `, `{"pings":[{"lat":1,"lat":2}]}`, `{"pings":[5]}`, `{"pings":[{}]} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, ok := scanBatch(body, nil)
		if !ok {
			return
		}
		bc := &batchCodec{body: append([]byte(nil), body...)}
		bc.d = jsontext.NewDecoder(&bc.r)
		if err := bc.split(); err != nil {
			t.Fatalf("scanBatch read %q, which the splitter refuses: %v", body, err)
		}
		if len(bc.spans) != len(reqs) {
			t.Fatalf("scanBatch(%q) read %d pings, the splitter %d", body, len(reqs), len(bc.spans))
		}
		for i, sp := range bc.spans {
			want, err := decodePing(bc.body[sp[0]:sp[1]], "")
			if err != nil || want != reqs[i] {
				t.Fatalf("scanBatch(%q): ping %d is %+v, decoding it alone gives %+v, %v", body, i, reqs[i], want, err)
			}
		}
	})
}

// FuzzAppendQuote: the plain-ASCII shortcut writes what jsontext writes.
func FuzzAppendQuote(f *testing.F) {
	for _, s := range []string{"", "s-1", "Hot & <fresh>", `a"b`, `a\b`, "tab\there", "caf\u00e9", "\u2028", "\x7f", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := jsontext.AppendQuote(nil, s)
		if got := appendQuote(nil, s); string(got) != string(want) {
			t.Errorf("appendQuote(%q) = %s, jsontext writes %s", s, got, want)
		}
	})
}
