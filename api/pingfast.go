package api

import (
	"strconv"
	"unsafe"
)

// scanPing decodes the common shape of a ping with a hand-written
// scanner: one object of the five known members, each once, with plain
// values (strings of printable ASCII without escapes, numbers, null),
// nothing after it but whitespace. It answers ok false for anything else
// (an escape, an unknown or repeated name, a wrong type, bad JSON, a
// number out of range), and the caller decodes that with the general
// tokenizer, which also words the error: what this accepts, it decodes
// as the tokenizer would (FuzzDecodePing holds both to the strict
// reference decoder), and it never words an error itself.
func scanPing(b []byte) (pingRequest, bool) {
	req, i, ok := scanPingAt(b, skipWS(b, 0))
	return req, ok && skipWS(b, i) == len(b)
}

// scanBatch is scanPing for a whole batch body, {"pings":[…]} with every
// ping of the common shape, appending the pings to dst; ok is false for
// anything else, which the caller splits and decodes ping by ping.
func scanBatch(b []byte, dst []pingRequest) ([]pingRequest, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	name, i, ok := scanPlainString(b, skipWS(b, i+1))
	if !ok || string(name) != "pings" {
		return dst, false
	}
	if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
		return dst, false
	}
	if i = skipWS(b, i+1); i >= len(b) || b[i] != '[' {
		return dst, false
	}
	if i = skipWS(b, i+1); i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			req, j, ok := scanPingAt(b, i)
			if !ok {
				return dst, false
			}
			dst = append(dst, req)
			if i = skipWS(b, j); i >= len(b) {
				return dst, false
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return dst, false
			}
			i = skipWS(b, i+1)
		}
	}
	if i = skipWS(b, i); i >= len(b) || b[i] != '}' {
		return dst, false
	}
	return dst, skipWS(b, i+1) == len(b)
}

// scanPingAt reads a ping object at b[i:] and answers where it ends.
func scanPingAt(b []byte, i int) (req pingRequest, next int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return req, i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		var seen uint8
		for {
			name, j, ok := scanPlainString(b, i)
			if !ok {
				return req, i, false
			}
			i = skipWS(b, j)
			if i >= len(b) || b[i] != ':' {
				return req, i, false
			}
			i = skipWS(b, i+1)
			var bit uint8
			switch string(name) {
			case "device_id":
				bit = 1
				req.DeviceID, i, ok = scanStringValue(b, i)
			case "ts":
				bit = 2
				req.TS, i, ok = scanStringValue(b, i)
			case "lat":
				bit = 4
				req.Lat, i, ok = scanNumberValue(b, i)
			case "lon":
				bit = 8
				req.Lon, i, ok = scanNumberValue(b, i)
			case "accuracy_m":
				bit = 16
				req.AccuracyM, i, ok = scanNumberValue(b, i)
			case "speed_mps":
				bit = 32
				req.SpeedMPS, i, ok = scanNumberValue(b, i)
			default:
				return req, i, false
			}
			if !ok || seen&bit != 0 {
				return req, i, false
			}
			seen |= bit
			i = skipWS(b, i)
			if i >= len(b) {
				return req, i, false
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return req, i, false
			}
			i = skipWS(b, i+1)
		}
	}
	return req, i, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString reads a string of printable ASCII without escapes at
// b[i:]; ok is false for any other string, or no string.
func scanPlainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

func scanStringValue(b []byte, i int) (optString, int, bool) {
	if isNull(b, i) {
		return optString{}, i + 4, true
	}
	s, j, ok := scanPlainString(b, i)
	if !ok {
		return optString{}, j, false
	}
	return optString{string(s), true}, j, true
}

func scanNumberValue(b []byte, i int) (optFloat, int, bool) {
	if isNull(b, i) {
		return optFloat{}, i + 4, true
	}
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return optFloat{}, i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return optFloat{}, i, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return optFloat{}, i, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	// The bytes stay alive for the call and ParseFloat keeps none.
	lit := b[start:i]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), 64)
	if err != nil {
		return optFloat{}, i, false // out of range: the tokenizer words it
	}
	return optFloat{f, true}, i, true
}

func isNull(b []byte, i int) bool {
	return len(b)-i >= 4 && string(b[i:i+4]) == "null"
}
