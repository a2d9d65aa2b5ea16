package pushtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

const (
	teamID      = "DEF123GHIJ"
	keyID       = "ABC123DEFG"
	topic       = "com.example.app"
	deviceToken = "8ad4f1c1b5e1c0a7c1f0e5d3b2a1908f7e6d5c4b3a29180716253443526170ab"
)

// newAuthKey makes a P-256 key as Apple issues it: a PKCS#8 PEM .p8,
// read back with apns2's own parser.
func newAuthKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	key, err := token.AuthKeyFromBytes(p8)
	if err != nil {
		t.Fatalf("AuthKeyFromBytes: %v", err)
	}
	return key
}

// newAPNs starts a fake with one registered key and returns it with a
// real apns2 client signing with that key.
func newAPNs(t *testing.T) (*pushtest.APNs, *apns2.Client) {
	t.Helper()
	f := pushtest.NewAPNs(t)
	key := newAuthKey(t)
	f.AddKey(teamID, keyID, &key.PublicKey)
	return f, f.Client(&token.Token{AuthKey: key, KeyID: keyID, TeamID: teamID})
}

func alert(tok string) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: tok,
		Topic:       topic,
		Payload:     []byte(`{"aps":{"alert":{"title":"Flash sale","body":"20% off at Main St"}},"event_id":"ev1"}`),
	}
}

func push(t *testing.T, c *apns2.Client, n *apns2.Notification) *apns2.Response {
	t.Helper()
	res, err := c.Push(n)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return res
}

func TestAPNsPushAccepted(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	n := alert(deviceToken)
	n.ApnsID = "4F8B2A4C-1C2D-4E5F-8A9B-0C1D2E3F4A5B"
	n.CollapseID = "fence-42"
	n.Priority = apns2.PriorityLow
	n.Expiration = exp
	n.PushType = apns2.PushTypeAlert

	res := push(t, c, n)
	if !res.Sent() || res.Reason != "" || res.ApnsID != n.ApnsID || res.ApnsUniqueID == "" {
		t.Fatalf("Push = %+v, want 200 with apns-id %s and an apns-unique-id", res, n.ApnsID)
	}
	res2 := push(t, c, alert(deviceToken)) // no apns-id: APNs makes one
	if !res2.Sent() || len(res2.ApnsID) != 36 || res2.ApnsID == n.ApnsID {
		t.Fatalf("Push without apns-id = %+v, want 200 with a new UUID", res2)
	}

	got := f.Received()
	if len(got) != 2 {
		t.Fatalf("Received() has %d pushes, want 2", len(got))
	}
	p := got[0]
	want := pushtest.APNsPush{Token: deviceToken, Topic: topic, PushType: "alert", Priority: 5,
		Expiration: exp, CollapseID: "fence-42", APNsID: n.ApnsID, KeyID: keyID, TeamID: teamID}
	if p.Token != want.Token || p.Topic != want.Topic || p.PushType != want.PushType || p.Priority != want.Priority ||
		!p.Expiration.Equal(want.Expiration) || p.CollapseID != want.CollapseID || p.APNsID != want.APNsID ||
		p.KeyID != want.KeyID || p.TeamID != want.TeamID {
		t.Errorf("Received()[0] = %+v, want %+v", p, want)
	}
	if string(p.Payload) != string(n.Payload.([]byte)) {
		t.Errorf("payload = %s, want %s", p.Payload, n.Payload)
	}
	if p.JWT == "" || p.JWT != c.Token.Bearer || p.At.IsZero() {
		t.Errorf("JWT = %q, At = %v; want the client's bearer %q and a time", p.JWT, p.At, c.Token.Bearer)
	}
	if got[1].APNsID != res2.ApnsID || got[1].PushType != "alert" || got[1].Priority != 0 {
		t.Errorf("Received()[1] = %+v, want apns-id %s, push type alert (apns2's default), no priority", got[1], res2.ApnsID)
	}
	if f.Count(deviceToken) != 2 || f.Attempts(deviceToken) != 2 || f.Connections() != 1 || f.JWTs() != 1 {
		t.Errorf("Count, Attempts, Connections, JWTs = %d, %d, %d, %d; want 2, 2, 1, 1",
			f.Count(deviceToken), f.Attempts(deviceToken), f.Connections(), f.JWTs())
	}
}

// signed makes a provider token by hand, for the cases apns2 will not
// produce.
func signed(t *testing.T, key *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
	t.Helper()
	j := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "iat": iat.Unix()})
	j.Header["kid"] = kid
	s, err := j.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAPNsProviderTokenRefused(t *testing.T) {
	t.Parallel()
	f := pushtest.NewAPNs(t)
	key := newAuthKey(t)
	f.AddKey(teamID, keyID, &key.PublicKey)
	other := newAuthKey(t)

	tests := []struct {
		name   string
		bearer string // "" means apns2 signs with other under keyID
		noAuth bool
		reason string
	}{
		{name: "signed by another key", reason: apns2.ReasonInvalidProviderToken},
		{name: "unknown key id", bearer: signed(t, key, "ZZZ999ZZZZ", teamID, time.Now()), reason: apns2.ReasonInvalidProviderToken},
		{name: "wrong team", bearer: signed(t, key, keyID, "XXX999XXXX", time.Now()), reason: apns2.ReasonInvalidProviderToken},
		{name: "not a JWT", bearer: "not.a.jwt", reason: apns2.ReasonInvalidProviderToken},
		{name: "issued over an hour ago", bearer: signed(t, key, keyID, teamID, time.Now().Add(-61*time.Minute)), reason: apns2.ReasonExpiredProviderToken},
		{name: "no authorization header", noAuth: true, reason: apns2.ReasonMissingProviderToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &token.Token{AuthKey: other, KeyID: keyID, TeamID: teamID}
			if tt.bearer != "" {
				// A fresh IssuedAt keeps apns2 from signing a new one.
				tok.Bearer, tok.IssuedAt = tt.bearer, time.Now().Unix()
			}
			c := f.Client(tok)
			if tt.noAuth {
				c.Token = nil
			}
			res := push(t, c, alert(deviceToken))
			if res.StatusCode != http.StatusForbidden || res.Reason != tt.reason {
				t.Errorf("Push = %d %q, want 403 %q", res.StatusCode, res.Reason, tt.reason)
			}
			if res.ApnsID == "" {
				t.Error("403 without apns-id; APNs always sends one")
			}
		})
	}
	if f.Count(deviceToken) != 0 || f.Attempts(deviceToken) != 0 {
		t.Errorf("Count, Attempts = %d, %d after refused tokens; want 0, 0", f.Count(deviceToken), f.Attempts(deviceToken))
	}
}

// post sends a raw request over the client's HTTP/2 transport, for the
// requests apns2 will not make, and returns the status, the reason and
// the headers.
func post(t *testing.T, f *pushtest.APNs, c *apns2.Client, method, path string, hdr map[string]string, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("authorization", "bearer "+c.Token.GenerateIfExpired())
	req.Header.Set("apns-topic", topic)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.HTTPClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var b struct {
		Reason string `json:"reason"`
	}
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("body %q: %v", raw, err)
		}
	}
	return res.StatusCode, b.Reason, res.Header
}

func TestAPNsRequestChecks(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	const ok = `{"aps":{"alert":"hi"}}`
	path := "/3/device/" + deviceToken
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		status int
		reason string
	}{
		{"accepted", "POST", path, nil, ok, 200, ""},
		{"GET", "GET", path, nil, "", 405, "MethodNotAllowed"},
		{"bad path", "POST", "/3/devices/" + deviceToken, nil, ok, 404, "BadPath"},
		{"no device token", "POST", "/3/device/", nil, ok, 400, "MissingDeviceToken"},
		{"odd-length token", "POST", path + "a", nil, ok, 400, "BadDeviceToken"},
		{"non-hex token", "POST", "/3/device/zz" + deviceToken[2:], nil, ok, 400, "BadDeviceToken"},
		{"no topic", "POST", path, map[string]string{"apns-topic": ""}, ok, 400, "MissingTopic"},
		{"bad push type", "POST", path, map[string]string{"apns-push-type": "loud"}, ok, 400, "InvalidPushType"},
		{"priority 7", "POST", path, map[string]string{"apns-priority": "7"}, ok, 400, "BadPriority"},
		{"priority 1", "POST", path, map[string]string{"apns-priority": "1"}, ok, 200, ""},
		{"bad expiration", "POST", path, map[string]string{"apns-expiration": "tomorrow"}, ok, 400, "BadExpirationDate"},
		{"bad apns-id", "POST", path, map[string]string{"apns-id": "42"}, ok, 400, "BadMessageId"},
		{"long collapse id", "POST", path, map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}, ok, 400, "BadCollapseId"},
		{"empty payload", "POST", path, nil, "", 400, "PayloadEmpty"},
		{"payload not JSON", "POST", path, nil, "{aps", 400, "PayloadEmpty"},
		{"payload without aps", "POST", path, nil, `{"alert":"hi"}`, 400, "PayloadEmpty"},
		{"payload of 4096 bytes", "POST", path, nil, padded(4096), 200, ""},
		{"payload of 4097 bytes", "POST", path, nil, padded(4097), 413, "PayloadTooLarge"},
		{"voip payload of 5120 bytes", "POST", path, map[string]string{"apns-push-type": "voip"}, padded(5120), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, hdr := post(t, f, c, tt.method, tt.path, tt.hdr, tt.body)
			if status != tt.status || reason != tt.reason {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, status, reason, tt.status, tt.reason)
			}
			if hdr.Get("apns-id") == "" {
				t.Error("answer without apns-id")
			}
		})
	}
}

// padded is a valid payload of exactly n bytes.
func padded(n int) string {
	const head, tail = `{"aps":{},"pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestAPNsUnregistered(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	last := time.UnixMilli(1_767_225_600_123) // 2026-01-01T00:00:00.123Z
	f.Script(deviceToken, pushtest.Answer{Status: http.StatusGone, Timestamp: last})

	res := push(t, c, alert(deviceToken))
	if res.StatusCode != http.StatusGone || res.Reason != apns2.ReasonUnregistered {
		t.Fatalf("Push = %d %q, want 410 Unregistered", res.StatusCode, res.Reason)
	}
	// apns2 reads the milliseconds but keeps whole seconds.
	if want := time.Unix(1_767_225_600, 0); !res.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v, want %v", res.Timestamp.Time, want)
	}
	// The last answer repeats.
	if res := push(t, c, alert(deviceToken)); res.StatusCode != http.StatusGone {
		t.Errorf("second Push = %d, want 410 again", res.StatusCode)
	}
	// A reason alone brings its status; no timestamp given means now.
	other := strings.Repeat("ab", 32)
	f.Script(other, pushtest.Answer{Reason: apns2.ReasonExpiredToken})
	before := time.Now().Truncate(time.Second)
	res = push(t, c, alert(other))
	if res.StatusCode != http.StatusGone || res.Reason != apns2.ReasonExpiredToken || res.Timestamp.Before(before) {
		t.Errorf("Push = %d %q at %v, want 410 ExpiredToken at about now", res.StatusCode, res.Reason, res.Timestamp.Time)
	}
	if f.Count(deviceToken) != 0 || f.Attempts(deviceToken) != 2 {
		t.Errorf("Count, Attempts = %d, %d; want 0, 2", f.Count(deviceToken), f.Attempts(deviceToken))
	}
}

func TestAPNsTooManyRequests(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	f.Script(deviceToken, pushtest.Answer{Status: http.StatusTooManyRequests, RetryAfter: 2500 * time.Millisecond}, pushtest.Answer{})

	res := push(t, c, alert(deviceToken))
	if res.StatusCode != http.StatusTooManyRequests || res.Reason != apns2.ReasonTooManyRequests {
		t.Fatalf("Push = %d %q, want 429 TooManyRequests", res.StatusCode, res.Reason)
	}
	// apns2.Response has no headers; a raw request shows Retry-After.
	f.Script(deviceToken, pushtest.Answer{Status: http.StatusTooManyRequests, RetryAfter: 2500 * time.Millisecond}, pushtest.Answer{})
	status, reason, hdr := post(t, f, c, "POST", "/3/device/"+deviceToken, nil, `{"aps":{}}`)
	if status != 429 || reason != "TooManyRequests" || hdr.Get("Retry-After") != "3" {
		t.Errorf("raw push = %d %q Retry-After %q, want 429 TooManyRequests Retry-After 3", status, reason, hdr.Get("Retry-After"))
	}
	if res := push(t, c, alert(deviceToken)); !res.Sent() {
		t.Errorf("Push after the 429 = %d %q, want 200", res.StatusCode, res.Reason)
	}
	if f.Count(deviceToken) != 1 || f.Attempts(deviceToken) != 3 {
		t.Errorf("Count, Attempts = %d, %d; want 1, 3", f.Count(deviceToken), f.Attempts(deviceToken))
	}
}

func TestAPNsDrop(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	f.Script(deviceToken, pushtest.Answer{Drop: true}, pushtest.Answer{})
	if res, err := c.Push(alert(deviceToken)); err == nil {
		t.Fatalf("Push of a dropped stream = %+v, want an error", res)
	} else {
		t.Logf("apns2 sees a reset stream as: %v", err)
	}
	push(t, c, alert(deviceToken))
	if f.Connections() != 1 {
		t.Errorf("Connections() = %d after a stream reset, want 1: the connection survives", f.Connections())
	}

	other := strings.Repeat("cd", 32)
	f.Script(other, pushtest.Answer{CloseConn: true}, pushtest.Answer{})
	if res, err := c.Push(alert(other)); err == nil {
		t.Fatalf("Push on a closed connection = %+v, want an error", res)
	} else {
		t.Logf("apns2 sees a closed connection as: %v", err)
	}
	if res := push(t, c, alert(other)); !res.Sent() {
		t.Errorf("Push after the close = %d %q, want 200", res.StatusCode, res.Reason)
	}
	if f.Connections() != 2 {
		t.Errorf("Connections() = %d after a closed connection, want 2", f.Connections())
	}
	if f.Count(deviceToken) != 1 || f.Attempts(deviceToken) != 2 || f.Count(other) != 1 || f.Attempts(other) != 2 {
		t.Errorf("Count, Attempts = %d, %d and %d, %d; want 1, 2 and 1, 2: apns2 does not retry",
			f.Count(deviceToken), f.Attempts(deviceToken), f.Count(other), f.Attempts(other))
	}
}

// burst pushes n alerts at once to distinct tokens and fails the test on
// any error or refusal.
func burst(t *testing.T, c *apns2.Client, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			res, err := c.Push(alert(fmt.Sprintf("%064x", i)))
			switch {
			case err != nil:
				errs <- err
			case !res.Sent():
				errs <- fmt.Errorf("push %d: %d %s", i, res.StatusCode, res.Reason)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAPNsConcurrentPushesShareOneConnection(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	push(t, c, alert(deviceToken)) // a sender's connection is long-lived
	const n = 500
	burst(t, c, n)
	ids := map[string]bool{}
	for _, p := range f.Received() {
		ids[p.APNsID] = true
	}
	if len(ids) != n+1 || f.Connections() != 1 || f.JWTs() != 1 {
		t.Errorf("distinct apns-ids, Connections, JWTs = %d, %d, %d; want %d, 1, 1", len(ids), f.Connections(), f.JWTs(), n+1)
	}
}

// TestAPNsColdBurst: a fan-out that hits a client before its first push
// still shares one connection (see APNs.Client).
func TestAPNsColdBurst(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	burst(t, c, 500)
	if f.Connections() != 1 || f.JWTs() != 1 || len(f.Received()) != 500 {
		t.Errorf("Connections, JWTs, Received = %d, %d, %d after a cold burst of 500; want 1, 1, 500",
			f.Connections(), f.JWTs(), len(f.Received()))
	}
}

func TestAPNsFailRandomly(t *testing.T) {
	t.Parallel()
	run := func() []string {
		f, c := newAPNs(t)
		f.FailRandomly(0.5, nil, 42)
		var got []string
		for i := range 60 {
			res := push(t, c, alert(fmt.Sprintf("%064x", i)))
			got = append(got, fmt.Sprint(res.StatusCode, " ", res.Reason))
		}
		return got
	}
	a, b := run(), run()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("same seed, different answers:\n%v\n%v", a, b)
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for s := range seen {
		switch s {
		case "200 ", "429 TooManyRequests", "500 InternalServerError", "503 ServiceUnavailable":
		default:
			t.Errorf("unexpected answer %q", s)
		}
	}
	if seen["200 "] == 0 || seen["200 "] == len(a) {
		t.Errorf("answers %v: want some successes and some failures", seen)
	}
}

func TestAPNsDefault(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	f.SetDefault(pushtest.Answer{Reason: apns2.ReasonShutdown})
	if res := push(t, c, alert(deviceToken)); res.StatusCode != 503 || res.Reason != apns2.ReasonShutdown {
		t.Errorf("Push = %d %q, want 503 Shutdown", res.StatusCode, res.Reason)
	}
	f.Script(deviceToken, pushtest.Answer{})
	if res := push(t, c, alert(deviceToken)); !res.Sent() {
		t.Errorf("scripted Push = %d %q, want 200: a script beats the default", res.StatusCode, res.Reason)
	}
}

// TestAPNsSustainedLoad keeps 256 pushes in flight on one connection for
// 20,000 pushes, a tenth of them refused with a body (410), so answers
// are written in batches while requests keep arriving: every push gets
// its own answer, intact, on the one connection.
func TestAPNsSustainedLoad(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	const total, workers = 20_000, 256
	tok := func(i int) string { return fmt.Sprintf("%064x", i) }
	for i := 0; i < total; i += 10 {
		f.Script(tok(i), pushtest.Answer{Status: http.StatusGone})
	}
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				res, err := c.Push(alert(tok(i)))
				switch {
				case err != nil:
					errs <- err
					return
				case i%10 == 0 && (res.StatusCode != http.StatusGone || res.Reason != apns2.ReasonUnregistered):
					errs <- fmt.Errorf("push %d: %d %q, want 410 Unregistered", i, res.StatusCode, res.Reason)
					return
				case i%10 != 0 && !res.Sent():
					errs <- fmt.Errorf("push %d: %d %q, want 200", i, res.StatusCode, res.Reason)
					return
				}
			}
		})
	}
	for i := range total {
		select {
		case jobs <- i:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := len(f.Received()), total-total/10; got != want {
		t.Errorf("accepted %d pushes, want %d", got, want)
	}
	if f.Connections() != 1 {
		t.Errorf("Connections() = %d, want 1", f.Connections())
	}
}

func TestAPNsKeepPushes(t *testing.T) {
	t.Parallel()
	f, c := newAPNs(t)
	push(t, c, alert(deviceToken))
	f.KeepPushes(false)
	push(t, c, alert(deviceToken))
	f.Script(deviceToken, pushtest.Answer{Status: http.StatusGone})
	push(t, c, alert(deviceToken))
	if len(f.Received()) != 1 || f.Count(deviceToken) != 1 || f.Accepted() != 2 || f.Attempts(deviceToken) != 3 {
		t.Errorf("Received, Count, Accepted, Attempts = %d, %d, %d, %d; want 1, 1, 2, 3",
			len(f.Received()), f.Count(deviceToken), f.Accepted(), f.Attempts(deviceToken))
	}
}
