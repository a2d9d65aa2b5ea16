package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/hotzone/hotzone/store/bolt"
)

// deliveryEnv is a server whose brand delivers through the real apns2
// and firebase clients to local fakes of APNs and FCM.
type deliveryEnv struct {
	*env
	apns  *pushtest.APNs
	fcm   *pushtest.FCM
	brand brandKeys
	keyID string
}

// fastRetry keeps retry tests short; the shape (exponential, jittered,
// Retry-After as a floor) is the production one.
var fastRetry = push.RetryPolicy{MaxAttempts: 12, Base: 20 * time.Millisecond, Max: 300 * time.Millisecond}

func newDeliveryEnv(t *testing.T) *deliveryEnv {
	t.Helper()
	apns, fcm := pushtest.NewAPNs(t), pushtest.NewFCM(t)
	e := &env{t: t, dir: t.TempDir(), opts: Options{}}
	var senders *push.Senders
	e.senders = func(db *bolt.DB) push.SenderFor {
		senders = push.NewSenders(db, push.SendersOptions{APNsURL: apns.URL(), FCMURL: fcm.Endpoint(), RootCAs: apns.CertPool(), Retry: fastRetry})
		return senders.For
	}
	e.open()
	e.srv.checkTokenURI = senders.CheckTokenURI
	t.Cleanup(func() {
		e.stop()
		if err := e.db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	d := &deliveryEnv{env: e, apns: apns, fcm: fcm}
	d.brand = e.brand("Donuts")
	d.keyID = "KEY0000001"
	d.uploadAPNs(d.keyID)
	sa, _ := fcm.NewServiceAccount("donuts-app")
	e.must(204, "PUT", "/v1/push/fcm", d.brand.AdminKey, map[string]any{"service_account_json": string(sa)})
	e.uncapped(d.brand.AdminKey, nil)
	e.must(201, "PUT", "/v1/stores/a", d.brand.AdminKey, circleStore("A", 40.7128, -74.0060, 2000))
	return d
}

// uploadAPNs makes a fresh .p8 key, registers its public half with the
// fake as Apple would, and uploads it.
func (d *deliveryEnv) uploadAPNs(keyID string) {
	d.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		d.t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		d.t.Fatal(err)
	}
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	d.apns.AddKey("TEAM000001", keyID, &key.PublicKey)
	d.must(204, "PUT", "/v1/push/apns", d.brand.AdminKey, map[string]any{"key_p8": string(p8), "key_id": keyID, "team_id": "TEAM000001",
		"topic": "com.example.donuts", "environment": "production"})
}

// devices registers n devices inside store a, alternating APNs and FCM,
// and returns their tokens by id.
func (d *deliveryEnv) devices(n int) map[string]string {
	d.t.Helper()
	tokens := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("d%05d", i)
		body := map[string]any{"platform": "android", "opt_in": true, "timezone": "America/New_York"}
		if i%2 == 0 {
			tokens[id] = tokenFor(id)
			body["platform"] = "ios"
			body["push"] = map[string]any{"provider": "apns", "token": tokens[id]}
		} else {
			tokens[id] = "fcm-" + id
			body["push"] = map[string]any{"provider": "fcm", "token": tokens[id]}
		}
		d.must(201, "PUT", "/v1/devices/"+id, d.brand.AppKey, body)
		d.must(200, "POST", "/v1/pings", d.brand.AppKey, ping(id, 40.7128, -74.0060))
	}
	return tokens
}

func (d *deliveryEnv) received(tok string) int {
	if len(tok) == 64 {
		return d.apns.Count(tok)
	}
	return d.fcm.Count(tok)
}

// waitSettled waits (bounded) until nothing of the live event at store a
// is queued, and returns its counts.
func (d *deliveryEnv) waitSettled(want int) map[string]int {
	d.t.Helper()
	var ev eventOut
	for i := 0; ; i++ {
		d.must(200, "GET", "/v1/stores/a/events/live", d.brand.AdminKey, nil).decode(d.t, &ev)
		if ev.Counts["devices_in_fence"] == want && ev.Counts["queued"] == 0 {
			return ev.Counts
		}
		if i > 6000 {
			d.t.Fatalf("delivery never settled: %v", ev.Counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliveryEndToEnd: an event fans out to 2,000 devices, half APNs and
// half FCM; each gets exactly one push at the fakes, with the headers and
// payload the providers want; a tenth of the tokens are dead and are
// cleared so the next event does not try them.
func TestDeliveryEndToEnd(t *testing.T) {
	d := newDeliveryEnv(t)
	tokens := d.devices(2000)
	dead := map[string]bool{}
	i := 0
	for id, tok := range tokens {
		if i%10 == 0 {
			dead[id] = true
			if len(tok) == 64 {
				d.apns.Script(tok, pushtest.Answer{Status: 410, Timestamp: time.Now().Add(time.Minute)})
			} else {
				d.fcm.Script(tok, pushtest.Answer{Reason: "UNREGISTERED"})
			}
		}
		i++
	}
	ev := d.startEvent(d.brand.AdminKey, "a", map[string]any{"title": "Hot Now", "body": "Fresh glazed", "url": "app://store/a", "duration_s": 1800})
	counts := d.waitSettled(2000)
	if counts["sent"] != 2000-len(dead) || counts["failed"] != len(dead) {
		t.Fatalf("counts = %v, want %d sent and %d failed (invalid_token)", counts, 2000-len(dead), len(dead))
	}
	for id, tok := range tokens {
		want := 1
		if dead[id] {
			want = 0 // answered 410/UNREGISTERED: never accepted
		}
		if got := d.received(tok); got != want {
			t.Errorf("device %s received %d pushes, want %d", id, got, want)
		}
	}
	if got := len(d.allNotifications(d.brand.AdminKey, "status=invalid_token")); got != len(dead) {
		t.Errorf("%d invalid_token entries, want %d", got, len(dead))
	}

	// What APNs saw: the headers Apple wants and our ids in the payload.
	for _, p := range d.apns.Received()[:5] {
		if p.PushType != "alert" || p.Priority != 10 || p.CollapseID != ev.ID || p.Topic != "com.example.donuts" ||
			p.Expiration.Unix() != ev.EndsAt.Unix() || len(p.Payload) > 4096 {
			t.Errorf("APNs push = type %q priority %d collapse %q topic %q expiration %v, want alert/10/%s/com.example.donuts/%v",
				p.PushType, p.Priority, p.CollapseID, p.Topic, p.Expiration, ev.ID, ev.EndsAt)
		}
		var payload struct {
			APS struct {
				Alert struct{ Title, Body string } `json:"alert"`
			} `json:"aps"`
			EventID string `json:"event_id"`
			StoreID string `json:"store_id"`
			URL     string `json:"url"`
		}
		if err := json.Unmarshal(p.Payload, &payload); err != nil || payload.APS.Alert.Title != "Hot Now" || payload.EventID != ev.ID || payload.StoreID != "a" || payload.URL != "app://store/a" {
			t.Errorf("APNs payload = %s", p.Payload)
		}
	}
	// What FCM saw: notification, data, Android priority/TTL/collapse
	// key, and the APNs block for iOS through FCM.
	for _, m := range d.fcm.Received()[:5] {
		if m.Notification.Title != "Hot Now" || m.Data["event_id"] != ev.ID || m.Data["url"] != "app://store/a" ||
			m.Android.Priority != "high" || m.Android.CollapseKey != ev.ID || m.Android.TTL == nil || *m.Android.TTL <= 0 ||
			m.APNs.Headers["apns-collapse-id"] != ev.ID || m.APNs.Headers["apns-expiration"] != strconv.FormatInt(ev.EndsAt.Unix(), 10) {
			t.Errorf("FCM message = %+v", m)
		}
	}
	// One connection and one provider token for all APNs pushes.
	if c, j := d.apns.Connections(), d.apns.JWTs(); c != 1 || j != 1 {
		t.Errorf("APNs fake saw %d connections and %d provider tokens, want 1 and 1", c, j)
	}

	// The next event does not try the cleared tokens: their devices are
	// suppressed for no_token.
	d.must(200, "DELETE", "/v1/stores/a/events/live", d.brand.AdminKey, nil)
	d.startEvent(d.brand.AdminKey, "a", map[string]any{"title": "Hot again", "body": "Second batch"})
	counts = d.waitSettled(2000)
	if counts["sent"] != 2000-len(dead) || counts["suppressed"] != len(dead) {
		t.Errorf("second event counts = %v, want %d sent and %d suppressed (no_token)", counts, 2000-len(dead), len(dead))
	}
	for id, tok := range tokens {
		if dead[id] && d.received(tok) != 0 {
			t.Errorf("dead token of %s was tried again", id)
		}
		if !dead[id] && d.received(tok) != 2 {
			t.Errorf("device %s received %d pushes over two events, want 2", id, d.received(tok))
		}
	}
}

// TestDeliveryRetries: 429 bursts slow delivery down and Retry-After is
// honoured; 30% random 500/503 answers still end with every push
// delivered, none twice.
func TestDeliveryRetries(t *testing.T) {
	d := newDeliveryEnv(t)
	tokens := d.devices(400)
	throttled := map[string]bool{}
	i := 0
	for id, tok := range tokens {
		if i%8 == 0 {
			throttled[id] = true
			a := pushtest.Answer{Status: 429, RetryAfter: time.Second}
			if len(tok) == 64 {
				d.apns.Script(tok, a, a, pushtest.Answer{})
			} else {
				d.fcm.Script(tok, pushtest.Answer{Reason: "QUOTA_EXCEEDED", RetryAfter: time.Second}, pushtest.Answer{Reason: "QUOTA_EXCEEDED", RetryAfter: time.Second}, pushtest.Answer{})
			}
		}
		i++
	}
	d.apns.FailRandomly(0.3, []int{500, 503}, 1)
	d.fcm.FailRandomly(0.3, []int{500, 503}, 2)
	ev := d.startEvent(d.brand.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now"})
	counts := d.waitSettled(400)
	if counts["sent"] != 400 {
		t.Fatalf("counts = %v, want all 400 sent", counts)
	}
	for id, tok := range tokens {
		if got := d.received(tok); got != 1 {
			t.Errorf("device %s received %d pushes, want exactly 1", id, got)
		}
	}
	// Two 429s with Retry-After: 1 s each: the push cannot have been
	// accepted sooner than 2 s after the event started.
	for _, p := range d.apns.Received() {
		for id := range throttled {
			if tokens[id] == p.Token && p.At.Sub(ev.StartsAt) < 2*time.Second {
				t.Errorf("throttled device %s accepted %v after start: Retry-After not honoured", id, p.At.Sub(ev.StartsAt))
			}
		}
	}
	for _, n := range d.allNotifications(d.brand.AdminKey, "event_id="+ev.ID) {
		if throttled[n.DeviceID] && n.Attempts < 3 {
			t.Errorf("throttled device %s: %d attempts, want 3 or more", n.DeviceID, n.Attempts)
		}
	}
}

// TestBrokenCredentials: APNs refusing the provider token marks the
// brand's credentials broken, keeps its notifications queued, and new
// credentials send them.
func TestBrokenCredentials(t *testing.T) {
	d := newDeliveryEnv(t)
	d.apns.RemoveKey(d.keyID) // Apple no longer knows the key: 403 InvalidProviderToken
	tokens := d.devices(20)
	d.startEvent(d.brand.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now"})
	var status struct {
		APNs struct {
			Status string  `json:"status"`
			Error  *string `json:"error"`
		} `json:"apns"`
	}
	for i := 0; ; i++ {
		d.must(200, "GET", "/v1/push", d.brand.AdminKey, nil).decode(t, &status)
		if status.APNs.Status == "broken" {
			break
		}
		if i > 500 {
			t.Fatalf("APNs credentials never marked broken: %+v", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status.APNs.Error == nil {
		t.Error("broken credentials carry no error")
	}
	// FCM is unaffected; the 10 APNs notifications stay queued.
	counts := d.waitCounts(d.brand.AdminKey, "a", func(c map[string]int) bool { return c["sent"] == 10 })
	if counts["queued"] != 10 {
		t.Errorf("with broken APNs credentials counts = %v, want the 10 APNs notifications still queued", counts)
	}
	d.uploadAPNs("KEY0000002")
	d.must(200, "GET", "/v1/push", d.brand.AdminKey, nil).decode(t, &status)
	if status.APNs.Status != "ok" || status.APNs.Error != nil {
		t.Errorf("after new credentials: %+v, want ok", status.APNs)
	}
	d.waitSettled(20)
	for id, tok := range tokens {
		if d.received(tok) != 1 {
			t.Errorf("device %s received %d, want 1", id, d.received(tok))
		}
	}
}

// TestGoneTimestampMilliseconds: a 410's timestamp is compared to the
// millisecond. A token registered earlier in the same second as APNs'
// timestamp is older than the 410 and is cleared (apns2 truncates the
// timestamp to the second, which made it look newer); one registered
// after the timestamp, in that same second, is newer and kept.
func TestGoneTimestampMilliseconds(t *testing.T) {
	d := newDeliveryEnv(t)
	register := func(id string) (string, time.Time) {
		t.Helper()
		for {
			tok := tokenFor(id + time.Now().String())
			d.must(200, "PUT", "/v1/devices/"+id, d.brand.AppKey, map[string]any{"platform": "ios", "opt_in": true,
				"push": map[string]any{"provider": "apns", "token": tok}}) // 201, then 200 on a retry
			dev, _, err := d.db.Device(bg, d.brand.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			// Room on both sides within its second.
			if ms := dev.TokenAt.Nanosecond() / 1e6; ms >= 2 && ms <= 997 {
				return tok, dev.TokenAt
			}
		}
	}
	d.must(201, "PUT", "/v1/devices/older", d.brand.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	d.must(201, "PUT", "/v1/devices/newer", d.brand.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	older, olderAt := register("older")
	newer, newerAt := register("newer")
	// APNs says the token went invalid after older's registration and
	// before newer's, each within the registration's own second.
	d.apns.Script(older, pushtest.Answer{Status: 410, Timestamp: olderAt.Truncate(time.Second).Add(999 * time.Millisecond)})
	d.apns.Script(newer, pushtest.Answer{Status: 410, Timestamp: newerAt.Add(-time.Millisecond)})
	for _, id := range []string{"older", "newer"} {
		d.must(200, "POST", "/v1/pings", d.brand.AppKey, ping(id, 40.7128, -74.0060))
	}
	d.must(201, "POST", "/v1/stores/a/events", d.brand.AdminKey, map[string]any{"title": "Hot", "body": "Now"})
	d.waitSettled(2)
	push := func(id string) string {
		var dev struct {
			Push map[string]any `json:"push"`
		}
		d.must(200, "GET", "/v1/devices/"+id, d.brand.AdminKey, nil).decode(t, &dev)
		return fmt.Sprint(dev.Push["provider"])
	}
	// Dead tokens are cleared right after the results' commit, which
	// the counts show first: wait (bounded) for it.
	for i := 0; push("older") != "<nil>"; i++ {
		if i > 500 {
			t.Fatalf("the token registered before the 410's timestamp (same second) is still held for %s", push("older"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := push("newer"); got != "apns" {
		t.Errorf("the token registered after the 410's timestamp (same second) was cleared: push %s", got)
	}
}
