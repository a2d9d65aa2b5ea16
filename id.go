package hotzone

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// IDAlphabet is the digits of NewID's ids, in order: Crockford-style
// lower-case base32 keeps ids and keys URL-safe and free of characters
// people misread.
const IDAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var idEncoding = base32.NewEncoding(IDAlphabet).WithPadding(base32.NoPadding)

var (
	idMu   sync.Mutex
	lastMS uint64
	seq    uint16
)

// NewID returns a 26-character id whose text order is its creation order
// (a millisecond timestamp, a counter, then randomness), so a bucket
// scanned backwards lists newest first without a second index.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	idMu.Lock()
	if ms <= lastMS {
		ms = lastMS
		seq++
		if seq == 0 {
			ms++
		}
	} else {
		seq = 0
	}
	lastMS = ms
	s := seq
	idMu.Unlock()
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(s))
	_, _ = rand.Read(b[8:])
	return idEncoding.EncodeToString(b[:])
}

// NewKey returns a fresh secret of the given kind, with its prefix.
func NewKey(kind KeyKind) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return kind.Prefix() + idEncoding.EncodeToString(b[:])
}

// HashKey is the only form in which a key is kept.
func HashKey(key string) [32]byte {
	// Keys fit the buffer, which stays on the stack: hashing one on each
	// request allocates nothing.
	var buf [96]byte
	if len(key) <= len(buf) {
		return sha256.Sum256(append(buf[:0], key...))
	}
	return sha256.Sum256([]byte(key))
}

// IDTime is the creation time encoded in an id made by NewID.
func IDTime(id string) (time.Time, bool) {
	b, err := idEncoding.DecodeString(id)
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]) >> 16)), true
}

// MinID is the smallest id NewID can make at t: every id made before t
// (by its clock) sorts below it, every id made at t or later does not.
func MinID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	return idEncoding.EncodeToString(b[:])
}
