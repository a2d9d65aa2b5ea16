package api

import (
	"time"

	"github.com/hotzone/hotzone"
)

// A registration (PUT /v1/devices/{id}) is read and answered by hand in
// its common shape, as a ping is (pingfast.go): the strict decoder and
// the reflective encoder cost more than the rest of the request.

// deviceBody is a registration's members as the handler checks them; a
// member absent or null is not ok.
type deviceBody struct {
	Platform, Timezone, Locale optString
	OptIn                      optBool
	Push                       byte // 0: absent, 'n': null, '{': an object
	Provider, Token            optString
	Tags                       []string // absent or null: none
}

type optBool struct {
	v, ok bool
}

// decodeDeviceBody reads a registration: by scanDevice when it can, else
// by the strict decoder, which also words what is wrong.
func decodeDeviceBody(b []byte) (deviceBody, error) {
	if d, ok := scanDevice(b); ok {
		return d, nil
	}
	return decodeDeviceStrict(b)
}

// decodeDeviceStrict is the general way: the body strictly, then the
// push object, as its own member path.
func decodeDeviceStrict(b []byte) (deviceBody, error) {
	var req deviceRequest
	if err := decodeJSON(b, "", &req); err != nil {
		return deviceBody{}, err
	}
	d := deviceBody{Platform: optOf(req.Platform), Timezone: optOf(req.Timezone), Locale: optOf(req.Locale)}
	if req.Tags != nil {
		d.Tags = *req.Tags
	}
	if req.OptIn != nil {
		d.OptIn = optBool{*req.OptIn, true}
	}
	switch {
	case len(req.Push) == 0:
	case req.Push.Kind() == 'n':
		d.Push = 'n'
	default:
		var p pushJSON
		if err := decodeJSON(req.Push, "push", &p); err != nil {
			return deviceBody{}, err
		}
		d.Push, d.Provider, d.Token = '{', optOf(p.Provider), optOf(p.Token)
	}
	return d, nil
}

func optOf(p *string) optString {
	if p == nil {
		return optString{}
	}
	return optString{*p, true}
}

// scanDevice decodes the common shape of a registration: one object of
// the known members, each once, whose values are plain strings
// (printable ASCII, no escapes), booleans, null, or for push an object
// of provider and token alike, nothing after it but whitespace. Anything
// else answers ok false, and the caller takes the strict way
// (FuzzScanDevice holds the two to the same answers).
func scanDevice(b []byte) (d deviceBody, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return d, false
	}
	i, ok = scanMembers(b, i, func(name []byte, b []byte, i int) (int, uint8, bool) {
		var ok bool
		switch string(name) {
		case "platform":
			d.Platform, i, ok = scanStringValue(b, i)
			return i, 1, ok
		case "opt_in":
			d.OptIn, i, ok = scanBoolValue(b, i)
			return i, 2, ok
		case "timezone":
			d.Timezone, i, ok = scanStringValue(b, i)
			return i, 4, ok
		case "locale":
			d.Locale, i, ok = scanStringValue(b, i)
			return i, 8, ok
		case "push":
			if isNull(b, i) {
				d.Push = 'n'
				return i + 4, 16, true
			}
			if i >= len(b) || b[i] != '{' {
				return i, 0, false
			}
			d.Push = '{'
			i, ok = scanMembers(b, i, func(name []byte, b []byte, i int) (int, uint8, bool) {
				var ok bool
				switch string(name) {
				case "provider":
					d.Provider, i, ok = scanStringValue(b, i)
					return i, 1, ok
				case "token":
					d.Token, i, ok = scanStringValue(b, i)
					return i, 2, ok
				}
				return i, 0, false
			})
			return i, 16, ok
		}
		return i, 0, false
	})
	return d, ok && skipWS(b, i) == len(b)
}

// scanMembers reads the object at b[i] ('{'), calling member with each
// member's name and where its value starts; member answers where the
// value ends, the member's bit (each at most once) and whether it could
// read it. It answers where the object ends.
func scanMembers(b []byte, i int, member func(name []byte, b []byte, i int) (int, uint8, bool)) (int, bool) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint8
	for {
		name, j, ok := scanPlainString(b, i)
		if !ok {
			return i, false
		}
		if i = skipWS(b, j); i >= len(b) || b[i] != ':' {
			return i, false
		}
		var bit uint8
		i, bit, ok = member(name, b, skipWS(b, i+1))
		if !ok || bit == 0 || seen&bit != 0 {
			return i, false
		}
		seen |= bit
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return i, false
		}
		i = skipWS(b, i+1)
	}
}

func scanBoolValue(b []byte, i int) (optBool, int, bool) {
	switch {
	case isNull(b, i):
		return optBool{}, i + 4, true
	case len(b)-i >= 4 && string(b[i:i+4]) == "true":
		return optBool{true, true}, i + 4, true
	case len(b)-i >= 5 && string(b[i:i+5]) == "false":
		return optBool{false, true}, i + 5, true
	}
	return optBool{}, i, false
}

// appendDevice appends a device as the API answers it (deviceJSON, as
// the encoder writes it; FuzzAppendDevice holds the two alike).
func appendDevice(b []byte, d *hotzone.Device) []byte {
	b = append(b, `{"id":`...)
	b = appendQuote(b, d.ID)
	b = append(b, `,"platform":`...)
	b = appendQuote(b, string(d.Platform))
	b = append(b, `,"push":`...)
	if d.Token != "" {
		b = append(b, `{"provider":`...)
		b = appendQuote(b, string(d.Provider))
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	if d.OptIn {
		b = append(b, `,"opt_in":true,"timezone":`...)
	} else {
		b = append(b, `,"opt_in":false,"timezone":`...)
	}
	b = appendQuote(b, d.Timezone)
	b = append(b, `,"locale":`...)
	if d.Locale != "" {
		b = appendQuote(b, d.Locale)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"tags":[`...)
	for i, t := range d.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuote(b, t)
	}
	b = append(b, `],"created_at":"`...)
	b = d.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = d.UpdatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
