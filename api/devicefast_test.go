package api

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/hotzone/hotzone"
)

// FuzzScanDevice: what the hand-written scanner accepts, it reads as the
// strict decoder does; what it refuses goes the strict way, so every
// body gets the strict decoder's answer.
func FuzzScanDevice(f *testing.F) {
	for _, s := range []string{
		`{"platform":"android","push":{"provider":"fcm","token":"t-1"},"opt_in":true,"timezone":"UTC","locale":"en-US"}`,
		`{"platform":"ios","push":null,"opt_in":false}`,
		` { "platform" : "ios" , "opt_in" : null , "push" : { } } `,
		`{"platform":"ios","platform":"android","opt_in":true}`,
		`{"Platform":"ios","opt_in":true}`,
		`{"platform":"i\u006fs","opt_in":true}`,
		`{"platform":"ios","opt_in":true,"extra":1}`,
		`{"platform":"ios","opt_in":true,"tags":["persona:commuter","loyalty:gold"]}`,
		`{"platform":"ios","opt_in":true,"tags":null}`,
		`{"platform":"ios","opt_in":"true"}`,
		`{"push":{"provider":"fcm","token":"x","token":"y"}}`,
		`{"push":{"provider":"fcm","x":1}}`,
		`{"push":[]}`,
		`{}`, `null`, ``, `{"opt_in":true}x`, `{"opt_in":tru}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := scanDevice([]byte(body))
		strict, err := decodeDeviceStrict([]byte(body))
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("scanDevice accepted %q, the strict decoder refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%q: scanDevice read %+v, the strict decoder %+v", body, fast, strict)
		}
	})
}

// FuzzAppendDevice: the hand-written answer is byte for byte what the
// encoder writes for deviceJSON.
func FuzzAppendDevice(f *testing.F) {
	f.Add("d-1", "android", "fcm", "tok", true, "UTC", "en-US", int64(1_796_000_000_123_456_789), int64(1_796_000_000_000_000_000))
	f.Add("é\"x", "ios", "apns", "", false, "Europe/Berlin", "", int64(0), int64(-1))
	f.Add("<&>", "ios", "apns", "t", false, "\u2028", "\x01", int64(253402300799999999999/1000), int64(5))
	f.Fuzz(func(t *testing.T, id, platform, provider, token string, optIn bool, tz, locale string, created, updated int64) {
		d := hotzone.Device{ID: id, Platform: hotzone.Platform(platform), Provider: hotzone.Provider(provider), Token: token, OptIn: optIn,
			Timezone: tz, Locale: locale, CreatedAt: time.Unix(0, created), UpdatedAt: time.Unix(0, updated)}
		want, err := json.Marshal(toDeviceJSON(d), json.Deterministic(true))
		if err != nil {
			return // not a device the server could hold (invalid UTF-8 is refused before)
		}
		if got := appendDevice(nil, &d); string(got) != string(want) {
			t.Fatalf("appendDevice = %s\nthe encoder = %s", got, want)
		}
	})
}

// FuzzValidFCMToken: the loop is the pattern plus the length limit.
func FuzzValidFCMToken(f *testing.F) {
	for _, s := range []string{"a", "a:b_c-D9", "", "a b", "é", strings.Repeat("a", 4096), strings.Repeat("a", 4097)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		want := len(tok) <= 4096 && fcmToken.MatchString(tok)
		if got := validFCMToken(tok); got != want {
			t.Fatalf("validFCMToken(%q) = %v, the pattern says %v", tok, got, want)
		}
	})
}

// localePattern is the contract's locale rule, the oracle for validLocale.
var localePattern = regexp.MustCompile(`^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,5}$`)

// FuzzValidLocale: the hand-written check agrees with the pattern on
// every input.
func FuzzValidLocale(f *testing.F) {
	for _, s := range []string{"de", "de-CH", "en_US", "zh-Hant-TW", "a", "abcdefghi", "de-", "de--CH", "de-CH-1-2-3-4", "de-CH-1-2-3-4-5", "de-123456789", "dé", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validLocale(s), localePattern.MatchString(s); got != want {
			t.Fatalf("validLocale(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
