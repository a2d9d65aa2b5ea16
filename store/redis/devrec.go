package redis

import (
	"encoding/json"
	"strings"

	"github.com/hotzone/hotzone"
)

// A device's record is stored as json.Marshal writes hotzone.Device;
// appendDevice and decodeDevice write and read it without reflection,
// as appendEntry and decodeEntry do entries: a registration writes one
// and reads the one it replaces, and a send reads its device's.

// appendDevice appends a device's record: the very bytes json.Marshal
// gives (TestAppendDevice holds it to that, field for field).
func appendDevice(b []byte, d *hotzone.Device) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, d.ID)
	b = append(b, `,"platform":`...)
	b = appendJSONString(b, string(d.Platform))
	if d.Provider != "" {
		b = append(b, `,"provider":`...)
		b = appendJSONString(b, string(d.Provider))
	}
	if d.Token != "" {
		b = append(b, `,"token":`...)
		b = appendJSONString(b, d.Token)
	}
	b = append(b, `,"token_at":`...)
	b = appendJSONTime(b, d.TokenAt)
	if d.OptIn {
		b = append(b, `,"opt_in":true`...)
	} else {
		b = append(b, `,"opt_in":false`...)
	}
	b = append(b, `,"timezone":`...)
	b = appendJSONString(b, d.Timezone)
	if d.Locale != "" {
		b = append(b, `,"locale":`...)
		b = appendJSONString(b, d.Locale)
	}
	if len(d.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range d.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, d.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, d.UpdatedAt)
	return append(b, '}')
}

// encodeDevice is appendDevice into a string of its own.
func encodeDevice(d *hotzone.Device) string {
	return string(appendDevice(make([]byte, 0, 320), d))
}

// decodeDevice reads a device's record into d (zeroed first), as
// json.Unmarshal would: by hand what it fully understands (plain ASCII
// strings, the fields of a record, in any order), json.Unmarshal for
// anything else. FuzzDecodeDevice holds it to json.Unmarshal's result.
func decodeDevice(s string, d *hotzone.Device) error {
	*d = hotzone.Device{}
	if fastDevice(s, d) {
		return nil
	}
	*d = hotzone.Device{}
	return json.Unmarshal([]byte(s), d)
}

// fastDevice is decodeDevice's hand path; false leaves d partly set.
func fastDevice(s string, d *hotzone.Device) bool {
	return plainObject(s, func(i int, key string) (int, bool) { return deviceField(s, i, key, d) })
}

// deviceField reads the value at s[i:] of field key into d and answers
// where the value ends.
func deviceField(s string, i int, key string, d *hotzone.Device) (int, bool) {
	switch key {
	case "id":
		return plainInto(s, i, &d.ID)
	case "platform":
		return plainInto(s, i, &d.Platform)
	case "provider":
		return plainInto(s, i, &d.Provider)
	case "token":
		return plainInto(s, i, &d.Token)
	case "timezone":
		return plainInto(s, i, &d.Timezone)
	case "locale":
		return plainInto(s, i, &d.Locale)
	case "opt_in":
		switch {
		case strings.HasPrefix(s[i:], "true"):
			d.OptIn = true
			return i + 4, true
		case strings.HasPrefix(s[i:], "false"):
			d.OptIn = false
			return i + 5, true
		}
		return 0, false
	case "token_at":
		return plainTime(s, i, &d.TokenAt)
	case "created_at":
		return plainTime(s, i, &d.CreatedAt)
	case "updated_at":
		return plainTime(s, i, &d.UpdatedAt)
	case "tags":
		return plainStrings(s, i, &d.Tags)
	}
	return 0, false
}

// plainStrings reads a JSON array of plain strings (see plainString) at
// s[i:] into a fresh slice, as json.Unmarshal fills a nil one.
func plainStrings(s string, i int, out *[]string) (int, bool) {
	if i >= len(s) || s[i] != '[' {
		return 0, false
	}
	i++
	l := []string{}
	if i < len(s) && s[i] == ']' {
		*out = l
		return i + 1, true
	}
	for {
		v, j, ok := plainString(s, i)
		if !ok || j >= len(s) {
			return 0, false
		}
		l = append(l, v)
		switch s[j] {
		case ',':
			i = j + 1
		case ']':
			*out = l
			return j + 1, true
		default:
			return 0, false
		}
	}
}
