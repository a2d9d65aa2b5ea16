package redis

import (
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
	b = appendInt(b, int64(n.Attempts))
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

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		if v == -v { // the one negative with no positive
			return append(b, "9223372036854775808"...)
		}
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
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
