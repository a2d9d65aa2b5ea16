package redis

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotzone/hotzone"
)

// appendEntry appends a notification as stored in the ledger: the very
// bytes json.Marshal gives, written without reflection. A fan-out
// encodes one entry per device, and encoding/json's reflection was an
// eighth of the fanning-out node's CPU (perf, 100,000 devices). Every
// entry is read back with json.Unmarshal, so this is only ever the
// faster writer of one format; TestAppendEntry holds it to
// json.Marshal's output, field for field, with every field set.
func appendEntry(b []byte, n *hotzone.Notification) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, n.ID)
	b = append(b, `,"brand_id":`...)
	b = appendJSONString(b, n.BrandID)
	b = append(b, `,"event_id":`...)
	b = appendJSONString(b, n.EventID)
	b = append(b, `,"store_id":`...)
	b = appendJSONString(b, n.StoreID)
	b = append(b, `,"device_id":`...)
	b = appendJSONString(b, n.DeviceID)
	b = append(b, `,"provider":`...)
	b = appendJSONString(b, string(n.Provider))
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(n.Status))
	if n.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, n.Reason)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(n.Attempts), 10)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, n.CreatedAt)
	b = append(b, `,"sent_at":`...)
	if n.SentAt != nil {
		b = appendJSONTime(b, *n.SentAt)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"last_error":`...)
	if n.LastError != nil {
		b = appendJSONString(b, *n.LastError)
	} else {
		b = append(b, "null"...)
	}
	if !n.NextAttempt.IsZero() {
		b = append(b, `,"next_attempt":`...)
		b = appendJSONTime(b, n.NextAttempt)
	}
	if n.ProviderID != "" {
		b = append(b, `,"provider_id":`...)
		b = appendJSONString(b, n.ProviderID)
	}
	if n.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendJSONString(b, n.Variant)
	}
	if !n.DecidedAt.IsZero() {
		b = append(b, `,"decided_at":`...)
		b = appendJSONTime(b, n.DecidedAt)
	}
	if n.OpenedAt != nil {
		b = append(b, `,"opened_at":`...)
		b = appendJSONTime(b, *n.OpenedAt)
	}
	if n.Visit != "" {
		b = append(b, `,"visit":`...)
		b = appendJSONString(b, n.Visit)
	}
	if !n.VisitAt.IsZero() {
		b = append(b, `,"visit_at":`...)
		b = appendJSONTime(b, n.VisitAt)
	}
	return append(b, '}')
}

// encodeEntry is appendEntry into a string of its own.
func encodeEntry(n *hotzone.Notification) string {
	return string(appendEntry(make([]byte, 0, 384), n))
}

// appendJSONTime appends a time as time.Time's MarshalJSON does, for
// the years it accepts (0 to 9999; a clock gives no other).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes it by
// default: HTML-safe (<, > and & escaped), U+2028 and U+2029 escaped,
// and invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeEntry reads a ledger entry into n (which it zeroes first), as
// json.Unmarshal would. Entries as appendEntry and the scripts' cjson
// write them are read by hand: plain ASCII strings, integers, null and
// the fields below, in any order. Anything else (an escape, another
// character set, a field it does not know) goes to json.Unmarshal, so
// the hand path is only ever a faster reader of what it fully
// understands; FuzzDecodeEntry holds it to json.Unmarshal's result. A
// claim decodes every entry it hands out: encoding/json's reflection
// was the largest part of a sending node's CPU in BenchmarkFanOutWork.
func decodeEntry(s string, n *hotzone.Notification) error {
	*n = hotzone.Notification{}
	if fastEntry(s, n) {
		return nil
	}
	*n = hotzone.Notification{}
	return json.Unmarshal([]byte(s), n)
}

// fastEntry is decodeEntry's hand path; false leaves n partly set.
func fastEntry(s string, n *hotzone.Notification) bool {
	return plainObject(s, func(i int, key string) (int, bool) { return entryField(s, i, key, n) })
}

// plainObject walks a JSON object of plain keys (see plainString), with
// no white space, handing each value's start and key to field, which
// reads the value and answers where it ends; false for anything else.
func plainObject(s string, field func(i int, key string) (int, bool)) bool {
	if len(s) < 2 || s[0] != '{' {
		return false
	}
	i := 1
	if s[i] == '}' {
		return i+1 == len(s)
	}
	for {
		key, j, ok := plainString(s, i)
		if !ok || j >= len(s) || s[j] != ':' {
			return false
		}
		i = j + 1
		if i >= len(s) {
			return false
		}
		if i, ok = field(i, key); !ok || i >= len(s) {
			return false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			return i+1 == len(s)
		default:
			return false
		}
	}
}

// entryField reads the value at s[i:] of field key into n and answers
// where the value ends.
func entryField(s string, i int, key string, n *hotzone.Notification) (int, bool) {
	switch key {
	case "id":
		return plainInto(s, i, &n.ID)
	case "brand_id":
		return plainInto(s, i, &n.BrandID)
	case "event_id":
		return plainInto(s, i, &n.EventID)
	case "store_id":
		return plainInto(s, i, &n.StoreID)
	case "device_id":
		return plainInto(s, i, &n.DeviceID)
	case "provider":
		return plainInto(s, i, &n.Provider)
	case "status":
		return plainInto(s, i, &n.Status)
	case "reason":
		return plainInto(s, i, &n.Reason)
	case "provider_id":
		return plainInto(s, i, &n.ProviderID)
	case "variant":
		return plainInto(s, i, &n.Variant)
	case "visit":
		return plainInto(s, i, &n.Visit)
	case "attempts":
		return plainInt(s, i, &n.Attempts)
	case "created_at":
		return plainTime(s, i, &n.CreatedAt)
	case "next_attempt":
		return plainTime(s, i, &n.NextAttempt)
	case "decided_at":
		return plainTime(s, i, &n.DecidedAt)
	case "visit_at":
		return plainTime(s, i, &n.VisitAt)
	case "sent_at":
		return nullOr(s, i, &n.SentAt, plainTime)
	case "opened_at":
		return nullOr(s, i, &n.OpenedAt, plainTime)
	case "last_error":
		return nullOr(s, i, &n.LastError, plainInto[string])
	}
	return 0, false
}

// plainInto reads a plain string (see plainString) at s[i:] into p.
func plainInto[T ~string](s string, i int, p *T) (int, bool) {
	v, j, ok := plainString(s, i)
	if ok {
		*p = T(v)
	}
	return j, ok
}

// nullOr reads null at s[i:] as a nil *p, and anything else with read
// into a fresh value, as json.Unmarshal fills a pointer field.
func nullOr[T any](s string, i int, p **T, read func(string, int, *T) (int, bool)) (int, bool) {
	if strings.HasPrefix(s[i:], "null") {
		*p = nil
		return i + 4, true
	}
	v := new(T)
	j, ok := read(s, i, v)
	*p = v
	return j, ok
}

// plainString reads a JSON string at s[i:] that needs no unescaping or
// checking (printable ASCII, no backslash), and answers it (a part of s)
// and where it ends.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c >= utf8.RuneSelf || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// plainInt reads a JSON integer at s[i:] that fits an int.
func plainInt(s string, i int, v *int) (int, bool) {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	start := j
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	// JSON allows no leading zero; a fraction or exponent goes the slow
	// way (json.Unmarshal refuses it for an int).
	if j == start || (s[start] == '0' && j-start > 1) || (j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E')) {
		return 0, false
	}
	x, err := strconv.Atoi(s[i:j])
	if err != nil {
		return 0, false
	}
	*v = x
	return j, true
}

// plainTime reads a time as time.Time's UnmarshalJSON does, from a
// plain string at s[i:].
func plainTime(s string, i int, t *time.Time) (int, bool) {
	_, j, ok := plainString(s, i)
	if !ok {
		return 0, false
	}
	var buf [64]byte
	if j-i > len(buf) {
		return 0, false
	}
	k := copy(buf[:], s[i:j])
	if t.UnmarshalJSON(buf[:k]) != nil {
		return 0, false
	}
	return j, true
}
