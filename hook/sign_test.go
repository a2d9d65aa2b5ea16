package hook

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("secret")
	testBody   = []byte("hello")
	testTime   = time.Unix(1767225600, 0)
)

func TestSignKnownAnswer(t *testing.T) {
	// Computed independently: HMAC-SHA256("secret", "1767225600.hello").
	const want = "t=1767225600,v1=39fa52a7c3039d31e438bc7903e1ba5bb9f957ff110f46ff8c533dcb04ad804f"
	if got := Sign(testSecret, testTime, testBody); got != want {
		t.Errorf("Sign() = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	good := Sign(testSecret, testTime, testBody)
	goodSig := strings.TrimPrefix(good, "t=1767225600,")
	otherSig := strings.TrimPrefix(Sign([]byte("old secret"), testTime, testBody), "t=1767225600,")
	tests := []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"round trip", good, testBody, testSecret, testTime, nil},
		{"a little later", good, testBody, testSecret, testTime.Add(4 * time.Minute), nil},
		{"at the tolerance", good, testBody, testSecret, testTime.Add(DefaultTolerance), nil},
		{"a little earlier", good, testBody, testSecret, testTime.Add(-4 * time.Minute), nil},
		{"tampered body", good, []byte("hellO"), testSecret, testTime, ErrSignatureMismatch},
		{"empty body", good, nil, testSecret, testTime, ErrSignatureMismatch},
		{"wrong secret", good, testBody, []byte("secreT"), testTime, ErrSignatureMismatch},
		{"too old", good, testBody, testSecret, testTime.Add(DefaultTolerance + time.Second), ErrSignatureExpired},
		{"from the future", good, testBody, testSecret, testTime.Add(-DefaultTolerance - time.Second), ErrSignatureExpired},
		{"other timestamp", "t=1767225601," + goodSig, testBody, testSecret, testTime, ErrSignatureMismatch},
		{"two v1, second matches", "t=1767225600," + otherSig + "," + goodSig, testBody, testSecret, testTime, nil},
		{"two v1, first matches", "t=1767225600," + goodSig + "," + otherSig, testBody, testSecret, testTime, nil},
		{"two v1, none matches", "t=1767225600," + otherSig + "," + otherSig, testBody, testSecret, testTime, ErrSignatureMismatch},
		{"fields reordered", goodSig + ",t=1767225600", testBody, testSecret, testTime, nil},
		{"unknown fields and spaces", "v0=abc, t=1767225600 ,  " + goodSig + ",v2=zz,", testBody, testSecret, testTime, nil},
		{"upper-case hex", "t=1767225600,v1=" + strings.ToUpper(strings.TrimPrefix(goodSig, "v1=")), testBody, testSecret, testTime, nil},
		{"expired checked after mismatch", good, []byte("x"), testSecret, testTime.Add(time.Hour), ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.header, tt.body, tt.secret, tt.now, DefaultTolerance); !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q) = %v, want %v", tt.header, err, tt.want)
			}
		})
	}
}

func TestVerifyGarbage(t *testing.T) {
	sig := strings.TrimPrefix(Sign(testSecret, testTime, testBody), "t=1767225600,")
	for _, h := range []string{
		"",
		",,,",
		"garbage",
		"t=1767225600",                     // no signature
		sig,                                // no timestamp
		"t=1767225600," + sig + ",oops",    // field without "="
		"t=," + sig,                        // empty timestamp
		"t=abc," + sig,                     // not a number
		"t=+1767225600," + sig,             // not canonical
		"t=01767225600," + sig,             // not canonical
		"t=1767225600,t=1767225600," + sig, // which one was signed?
		"t=99999999999999999999," + sig,    // overflows
		"t=1767225600,v1=",                 // empty signature
		"t=1767225600,v1=zz" + sig[5:],     // not hex
		"t=1767225600," + sig[:len(sig)-2], // too short
		"t=1767225600," + sig + "00",       // too long
		"t=1767225600;" + sig,              // wrong separator
	} {
		if err := Verify(h, testBody, testSecret, testTime, DefaultTolerance); !errors.Is(err, ErrBadSignatureHeader) {
			t.Errorf("Verify(%q) = %v, want %v", h, err, ErrBadSignatureHeader)
		}
	}
}

func TestVerifyZeroToleranceIsDefault(t *testing.T) {
	h := Sign(testSecret, testTime, testBody)
	if err := Verify(h, testBody, testSecret, testTime.Add(time.Minute), 0); err != nil {
		t.Errorf("Verify(tolerance 0, 1 min later) = %v, want nil", err)
	}
	if err := Verify(h, testBody, testSecret, testTime.Add(time.Hour), 0); !errors.Is(err, ErrSignatureExpired) {
		t.Errorf("Verify(tolerance 0, 1 h later) = %v, want %v", err, ErrSignatureExpired)
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret() error = %v", err)
	}
	b, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret() error = %v", err)
	}
	if a == b {
		t.Errorf("NewSecret() twice = %q both times", a)
	}
	rest, ok := strings.CutPrefix(a, "whsec_")
	if !ok {
		t.Fatalf("NewSecret() = %q, want prefix whsec_", a)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) != 32 {
		t.Errorf("NewSecret() = %q: decodes to %d bytes (err %v), want 32", a, len(raw), err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(Sign(testSecret, testTime, testBody), testBody, testSecret)
	f.Add("t=1767225600,v1=00,v1=", []byte(""), []byte(""))
	f.Add("t=-1,v1="+strings.Repeat("ab", 32), []byte("{}"), []byte("whsec_x"))
	f.Add(",=,t==,v1==", []byte{0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, header string, body, secret []byte) {
		// Arbitrary input: any answer but a panic.
		_ = Verify(header, body, secret, testTime, DefaultTolerance)

		// Whatever Sign produces, Verify accepts with the same inputs,
		// and refuses with another body.
		h := Sign(secret, testTime, body)
		if err := Verify(h, body, secret, testTime, DefaultTolerance); err != nil {
			t.Fatalf("Verify(Sign(%q, %q)) = %v, want nil", secret, body, err)
		}
		other := append([]byte("x"), body...)
		if err := Verify(h, other, secret, testTime, DefaultTolerance); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify(Sign(%q), body %q) = %v, want %v", body, other, err, ErrSignatureMismatch)
		}
	})
}
