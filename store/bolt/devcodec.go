package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/hotzone/hotzone"
)

// Device records are kept in a compact binary form: a decision reads
// the device it decides for, and a fan-out decides for a hundred
// thousand. Records written as JSON by earlier versions still read
// (JSON starts with '{', the binary form with its version byte); the id
// is the key's, not repeated in the value.
const devCodecV1 = 1

// Bits of the flags byte.
const (
	devOptIn = 1 << iota
	devAndroid
	devFCM
	devTokenAt
	// devTags: the tags follow the times (a count, then each).
	devTags
)

var errBadDevice = errors.New("store: malformed device record")

// appendDevice appends d's binary form to buf.
func appendDevice(buf []byte, d *hotzone.Device) []byte {
	var flags byte
	if d.OptIn {
		flags |= devOptIn
	}
	if d.Platform == hotzone.PlatformAndroid {
		flags |= devAndroid
	}
	if d.Provider == hotzone.ProviderFCM {
		flags |= devFCM
	}
	if !d.TokenAt.IsZero() {
		flags |= devTokenAt
	}
	if len(d.Tags) > 0 {
		flags |= devTags
	}
	buf = append(buf, devCodecV1, flags)
	for _, s := range [...]string{d.Token, d.Timezone, d.Locale} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = appendTime(buf, d.CreatedAt)
	buf = appendTime(buf, d.UpdatedAt)
	if flags&devTokenAt != 0 {
		buf = appendTime(buf, d.TokenAt)
	}
	if flags&devTags != 0 {
		buf = binary.AppendUvarint(buf, uint64(len(d.Tags)))
		for _, t := range d.Tags {
			buf = binary.AppendUvarint(buf, uint64(len(t)))
			buf = append(buf, t...)
		}
	}
	return buf
}

func appendTime(buf []byte, t time.Time) []byte {
	buf = binary.AppendVarint(buf, t.Unix())
	return binary.AppendUvarint(buf, uint64(t.Nanosecond()))
}

// decodeDevice reads a stored device of the given brand and id, in
// either form. A token always has its provider: an APNs token is stored
// with no provider bit.
func decodeDevice(brandID, id string, b []byte) (hotzone.Device, error) {
	d := hotzone.Device{ID: id, BrandID: brandID}
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &d); err != nil {
			return hotzone.Device{}, err
		}
		d.ID, d.BrandID = id, brandID
		return d, nil
	}
	if len(b) < 2 || b[0] != devCodecV1 || b[1]&^(devOptIn|devAndroid|devFCM|devTokenAt|devTags) != 0 {
		return hotzone.Device{}, errBadDevice
	}
	flags := b[1]
	b = b[2:]
	var strs [3]string
	for i := range strs {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return hotzone.Device{}, errBadDevice
		}
		strs[i], b = string(b[k:k+int(n)]), b[k+int(n):]
	}
	d.Token, d.Timezone, d.Locale = strs[0], strs[1], strs[2]
	d.OptIn = flags&devOptIn != 0
	d.Platform = hotzone.PlatformIOS
	if flags&devAndroid != 0 {
		d.Platform = hotzone.PlatformAndroid
	}
	if d.Token != "" {
		d.Provider = hotzone.ProviderAPNs
		if flags&devFCM != 0 {
			d.Provider = hotzone.ProviderFCM
		}
	}
	var ok bool
	if d.CreatedAt, b, ok = readTime(b); !ok {
		return hotzone.Device{}, errBadDevice
	}
	if d.UpdatedAt, b, ok = readTime(b); !ok {
		return hotzone.Device{}, errBadDevice
	}
	if flags&devTokenAt != 0 {
		if d.TokenAt, b, ok = readTime(b); !ok {
			return hotzone.Device{}, errBadDevice
		}
	}
	if flags&devTags != 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > uint64(len(b)) {
			return hotzone.Device{}, errBadDevice
		}
		b = b[k:]
		d.Tags = make([]string, n)
		for i := range d.Tags {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return hotzone.Device{}, errBadDevice
			}
			d.Tags[i], b = string(b[k:k+int(l)]), b[k+int(l):]
		}
	}
	if len(b) != 0 {
		return hotzone.Device{}, errBadDevice
	}
	return d, nil
}

// deviceCreatedAt reads only a stored device's creation time: the
// generation of its positions, all that opening needs of a device.
func deviceCreatedAt(b []byte) (time.Time, error) {
	if len(b) > 0 && b[0] == '{' {
		var d struct {
			CreatedAt time.Time `json:"created_at"`
		}
		err := json.Unmarshal(b, &d)
		return d.CreatedAt, err
	}
	if len(b) < 2 || b[0] != devCodecV1 {
		return time.Time{}, errBadDevice
	}
	b = b[2:]
	for range 3 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return time.Time{}, errBadDevice
		}
		b = b[k+int(n):]
	}
	t, _, ok := readTime(b)
	if !ok {
		return time.Time{}, errBadDevice
	}
	return t, nil
}

func readTime(b []byte) (time.Time, []byte, bool) {
	sec, k := binary.Varint(b)
	if k <= 0 {
		return time.Time{}, nil, false
	}
	b = b[k:]
	nsec, k := binary.Uvarint(b)
	if k <= 0 || nsec >= 1e9 {
		return time.Time{}, nil, false
	}
	return time.Unix(sec, int64(nsec)).UTC(), b[k:], true
}

// generation is what tells one registration of a device id from a
// later one: its creation time.
func generation(created time.Time) int64 { return created.UnixNano() }
