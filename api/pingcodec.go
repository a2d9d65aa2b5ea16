package api

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
)

// The ping is the hot path: it is decoded straight from the tokenizer
// (same strictness as every other body: names case-sensitive, duplicates,
// unknown members and trailing data refused) and its answer appended by
// hand, with pooled buffers, instead of through reflection.

type pingCodec struct {
	r    bytes.Reader
	d    *jsontext.Decoder
	buf  []byte
	ans  push.PingAnswer // the engine's answer, reused
	resp pingResponse    // and ours
}

var pingCodecs = sync.Pool{New: func() any {
	pc := &pingCodec{buf: make([]byte, 0, 1024)}
	pc.d = jsontext.NewDecoder(&pc.r)
	return pc
}}

// decodePing strictly decodes one ping object; prefix is its JSON path
// in a batch.
func decodePing(data []byte, prefix string) (pingRequest, error) {
	if req, ok := scanPing(data); ok {
		return req, nil
	}
	pc := pingCodecs.Get().(*pingCodec)
	defer pingCodecs.Put(pc)
	pc.r.Reset(data)
	pc.d.Reset(&pc.r)
	req, err := readPing(pc.d, prefix)
	return req, err
}

func readPing(d *jsontext.Decoder, prefix string) (pingRequest, error) {
	var req pingRequest
	tok, err := d.ReadToken()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return req, &hotzone.ValidationError{Detail: "the body is empty; a JSON object is required", Errors: []hotzone.FieldError{{Field: orRoot(prefix), Message: "required"}}}
		}
		return req, decodeError(err, prefix)
	}
	if tok.Kind() == 'n' {
		// null is no object at all: every required member is missing,
		// as the general decoder answers it.
		return req, trailing(d, prefix)
	}
	if tok.Kind() != '{' {
		return req, &hotzone.ValidationError{Detail: "the body does not match the expected shape", Errors: []hotzone.FieldError{{Field: orRoot(prefix), Message: "must be an object"}}}
	}
	for d.PeekKind() != '}' {
		// Names are read raw: comparing bytes allocates nothing. A name
		// spelled with escapes is unquoted first so it still matches.
		raw, err := d.ReadValue()
		if err != nil {
			return req, decodeError(err, prefix)
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			name, _ = jsontext.AppendUnquote(nil, raw)
		}
		switch string(name) {
		case "device_id":
			req.DeviceID, err = readString(d, prefix, "device_id")
		case "ts":
			req.TS, err = readString(d, prefix, "ts")
		case "lat":
			req.Lat, err = readNumber(d, prefix, "lat")
		case "lon":
			req.Lon, err = readNumber(d, prefix, "lon")
		case "accuracy_m":
			req.AccuracyM, err = readNumber(d, prefix, "accuracy_m")
		case "speed_mps":
			req.SpeedMPS, err = readNumber(d, prefix, "speed_mps")
		default:
			return req, &hotzone.ValidationError{Detail: "the body does not match the expected shape", Errors: []hotzone.FieldError{{Field: joinPath(prefix, string(name)), Message: "unknown field (names are case-sensitive)"}}}
		}
		if err != nil {
			return req, err
		}
	}
	if _, err := d.ReadToken(); err != nil { // the closing brace
		return req, decodeError(err, prefix)
	}
	return req, trailing(d, prefix)
}

// trailing refuses anything after the top-level value.
func trailing(d *jsontext.Decoder, prefix string) error {
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("invalid character after top-level value")
		}
		return &hotzone.ValidationError{Detail: "the body is not valid JSON", Errors: []hotzone.FieldError{{Field: orRoot(prefix), Message: "malformed JSON: " + err.Error()}}}
	}
	return nil
}

func wrongType(field, want string, kind jsontext.Kind) error {
	return &hotzone.ValidationError{Detail: "the body does not match the expected shape",
		Errors: []hotzone.FieldError{{Field: field, Message: "must be " + want + ", not " + jsonKindName(kind)}}}
}

// readNumber reads a number member; null leaves it missing.
func readNumber(d *jsontext.Decoder, prefix, name string) (optFloat, error) {
	v, err := d.ReadValue()
	if err != nil {
		return optFloat{}, decodeError(err, prefix)
	}
	switch v.Kind() {
	case 'n':
		return optFloat{}, nil
	case '0':
		// Parsed from the literal (which the tokenizer validated):
		// Token.Float would saturate and hide an overflow like 1e400.
		// The bytes stay alive for the call and ParseFloat keeps none.
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
		if err != nil {
			return optFloat{}, &hotzone.ValidationError{Detail: "the request is not valid", Errors: []hotzone.FieldError{{Field: joinPath(prefix, name), Message: "must be a number in range"}}}
		}
		return optFloat{f, true}, nil
	}
	return optFloat{}, wrongType(joinPath(prefix, name), "a number", v.Kind())
}

// readString reads a string member; null leaves it missing.
func readString(d *jsontext.Decoder, prefix, name string) (optString, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return optString{}, decodeError(err, prefix)
	}
	switch tok.Kind() {
	case 'n':
		return optString{}, nil
	case '"':
		return optString{tok.String(), true}, nil
	}
	return optString{}, wrongType(joinPath(prefix, name), "a string", tok.Kind())
}

// appendPingResponse appends the ping's answer as JSON.
func appendPingResponse(b []byte, r *pingResponse) []byte {
	b = append(b, `{"inside":[`...)
	for i, in := range r.Inside {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"store_id":`...)
		b = appendQuote(b, in.StoreID)
		b = append(b, `,"name":`...)
		b = appendQuote(b, in.Name)
		b = append(b, '}')
	}
	b = append(b, `],"live_events":[`...)
	for i, ev := range r.LiveEvents {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"event_id":`...)
		b = appendQuote(b, ev.EventID)
		b = append(b, `,"store_id":`...)
		b = appendQuote(b, ev.StoreID)
		b = append(b, `,"title":`...)
		b = appendQuote(b, ev.Title)
		b = append(b, `,"body":`...)
		b = appendQuote(b, ev.Body)
		b = append(b, `,"url":`...)
		if ev.URL == nil {
			b = append(b, "null"...)
		} else {
			b = appendQuote(b, *ev.URL)
		}
		b = append(b, '}')
	}
	b = append(b, `],"notifications":[`...)
	for i, n := range r.Notifications {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"event_id":`...)
		b = appendQuote(b, n.EventID)
		b = append(b, `,"status":`...)
		b = appendQuote(b, n.Status)
		if n.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendQuote(b, n.Reason)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendQuote appends s as a JSON string: as it is between quotes when
// it is plain printable ASCII (ids, most names), else as jsontext
// escapes it.
func appendQuote(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, _ = jsontext.AppendQuote(b, s)
			return b
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
