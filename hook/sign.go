package hook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the request header that carries a delivery's
// signature, so a receiver can tell hotzone's requests from forgeries.
const SignatureHeader = "Hotzone-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock: long enough for ordinary clock skew and a slow network,
// short enough that a captured request cannot be replayed later.
const DefaultTolerance = 5 * time.Minute

// The reasons Verify refuses a request, distinct so a receiver can log why
// (a mismatch usually means the wrong secret or a re-encoded body; an
// expired signature usually means a replay or a clock that is off).
var (
	// ErrBadSignatureHeader: the header is missing or is not
	// "t=<unix seconds>,v1=<64 hex digits>[,v1=…]".
	ErrBadSignatureHeader = errors.New("hook: malformed signature header")
	// ErrSignatureMismatch: no v1 value is the HMAC of this body with this
	// secret.
	ErrSignatureMismatch = errors.New("hook: signature does not match")
	// ErrSignatureExpired: the signature is genuine but its timestamp is
	// further from now than the tolerance.
	ErrSignatureExpired = errors.New("hook: signature timestamp outside tolerance")
)

// Sign returns the SignatureHeader value for body sent at t: the HMAC is
// taken over the timestamp as well as the body, so an old request cannot
// be replayed with a fresh timestamp.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks a SignatureHeader value against the raw body, the secret
// and the receiver's clock. It accepts the fields in any order, ignores
// fields it does not know (so a later scheme can be added beside v1), and
// passes when any v1 value matches, which lets a sender sign with an old
// and a new secret while a receiver switches over. The timestamp is checked
// only once a signature matched, so ErrSignatureExpired always means a
// genuine but stale or future request. A tolerance <= 0 means
// DefaultTolerance, never "no check".
func Verify(header string, body, secret []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return err
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		// Every candidate is compared, in constant time, so the time
		// taken says nothing about which one (or which byte) failed.
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // parseHeader checked it
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	return nil
}

// parseHeader returns the timestamp exactly as it was signed and the
// decoded v1 signatures. The timestamp must be canonical decimal: the HMAC
// covers its text, and "t=0123" and "t=123" must not both name one moment.
func parseHeader(h string) (ts string, sigs [][]byte, err error) {
	for field := range strings.SplitSeq(h, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		k, v, found := strings.Cut(field, "=")
		if !found {
			return "", nil, ErrBadSignatureHeader
		}
		switch strings.TrimSpace(k) {
		case "t":
			v = strings.TrimSpace(v)
			n, err := strconv.ParseInt(v, 10, 64)
			if ts != "" || err != nil || strconv.FormatInt(n, 10) != v {
				return "", nil, ErrBadSignatureHeader
			}
			ts = v
		case "v1":
			v = strings.TrimSpace(v)
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return "", nil, ErrBadSignatureHeader
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, ErrBadSignatureHeader
	}
	return ts, sigs, nil
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// NewSecret returns a fresh signing secret, "whsec_" and 32 random bytes in
// unpadded base64url: the prefix makes a leaked secret recognisable to
// secret scanners, and 256 bits match the HMAC's key strength. The HMAC key
// is the whole string's bytes, prefix included, exactly as the receiver is
// given it.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b), nil
}
