package deliver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/hook"
	"github.com/hotzone/hotzone/store/bolt"
	"github.com/hotzone/hotzone/store/storetest"
)

// receiver is a webhook endpoint that verifies every delivery and
// answers what answer says for the n-th request of a happening.
type receiver struct {
	t      *testing.T
	clock  *storetest.Clock // shared by the queue, the sender and the receiver
	secret string
	answer func(id string, n int, w http.ResponseWriter)

	mu       sync.Mutex
	tries    map[string]int         // happening id -> requests
	got      map[string][]string    // device -> happening ids answered 2xx, in order
	attempts map[string][]time.Time // happening id -> when each request came
}

// seen answers, under the lock, what a device got and when a
// happening's requests came (a late handler may still be writing).
func (rc *receiver) seen(device, id string) ([]string, []time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got[device]), slices.Clone(rc.attempts[id])
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := hook.Verify(r.Header.Get(hook.SignatureHeader), body, []byte(rc.secret), rc.clock.Now(), hook.DefaultTolerance); err != nil {
		rc.t.Errorf("a delivery failed verification: %v", err)
		w.WriteHeader(400)
		return
	}
	var msg struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			DeviceID string `json:"device_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.ID == "" || msg.Type == "" {
		rc.t.Errorf("a delivery's body %s: %v", body, err)
	}
	rc.mu.Lock()
	rc.tries[msg.ID]++
	n := rc.tries[msg.ID]
	rc.attempts[msg.ID] = append(rc.attempts[msg.ID], rc.clock.Now())
	rc.mu.Unlock()
	rec := httptest.NewRecorder()
	rc.answer(msg.ID, n, rec)
	if rec.Code >= 200 && rec.Code < 300 {
		rc.mu.Lock()
		rc.got[msg.Data.DeviceID] = append(rc.got[msg.Data.DeviceID], msg.ID)
		rc.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
}

type setup struct {
	db    *bolt.DB
	clock *storetest.Clock
	rc    *receiver
	hook  hotzone.Webhook
	d     *Deliverer
}

func newSetup(t *testing.T, allowPrivate bool, answer func(id string, n int, w http.ResponseWriter)) *setup {
	t.Helper()
	c := storetest.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	key := make([]byte, 32)
	db, err := bolt.Open(t.TempDir(), bolt.Options{Now: c.Now, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	br, _, _, err := db.CreateBrand(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := hook.NewSecret()
	rc := &receiver{t: t, clock: c, secret: secret, answer: answer, tries: map[string]int{}, got: map[string][]string{}, attempts: map[string][]time.Time{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	w := hotzone.Webhook{ID: "w", BrandID: br.ID, URL: srv.URL + "/hook", Events: hotzone.HookTypes, Secret: secret, CreatedAt: c.Now()}
	if err := db.CreateWebhook(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	client := hook.NewClient(hook.ClientOptions{AllowPrivate: allowPrivate, Timeout: 300 * time.Millisecond})
	d := New(db, Options{Now: c.Now, Client: client, PerHook: 4, Rand: func() float64 { return 0.5 }})
	return &setup{db: db, clock: c, rc: rc, hook: w, d: d}
}

func (s *setup) emit(t *testing.T, device string, ids ...string) {
	t.Helper()
	var hs []hotzone.Happening
	for _, id := range ids {
		hs = append(hs, hotzone.Happening{ID: id, Type: hotzone.HookEntered, CreatedAt: s.clock.Now(), OrderKey: device,
			Data: json.RawMessage(`{"device_id":"` + device + `"}`)})
	}
	if err := s.db.Emit(t.Context(), s.hook.BrandID, hs); err != nil {
		t.Fatal(err)
	}
}

// run delivers round after round, moving the clock on by step between
// rounds, until nothing is pending or rounds run out.
func (s *setup) run(t *testing.T, rounds int, step time.Duration) {
	t.Helper()
	for range rounds {
		if _, err := s.d.Round(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.d.Wait()
		pending, _, err := s.db.Deliveries(t.Context(), s.hook.BrandID, s.hook.ID, hotzone.DeliveryQuery{Status: hotzone.DeliveryPending})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			return
		}
		s.clock.Advance(step)
	}
	t.Fatalf("deliveries still pending after %d rounds", rounds)
}

// TestDeliveredInOrderThroughFailures: a receiver that answers 500, then
// 429 with Retry-After, then times out, then 200, gets every delivery,
// signed, each device's in the order they happened; the 429's
// Retry-After is honoured.
func TestDeliveredInOrderThroughFailures(t *testing.T) {
	s := newSetup(t, true, func(id string, n int, w http.ResponseWriter) {
		switch {
		case strings.HasPrefix(id, "a") && n == 1:
			w.WriteHeader(500)
		case id == "a2" && n == 2:
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		case id == "b1" && n == 1:
			time.Sleep(time.Second) // past the client's 300 ms
			w.WriteHeader(200)
		default:
			w.WriteHeader(204)
		}
	})
	s.emit(t, "devA", "a1", "a2", "a3")
	s.emit(t, "devB", "b1", "b2")
	s.run(t, 100, 10*time.Second)
	if got, _ := s.rc.seen("devA", ""); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("devA's deliveries answered 2xx, in order: %v, want a1 a2 a3", got)
	}
	// b1's first request timed out on our side though the receiver
	// answered 200 late: at least once, so it may count twice; the
	// order still holds.
	if got, _ := s.rc.seen("devB", ""); !slices.Equal(slices.Compact(got), []string{"b1", "b2"}) {
		t.Errorf("devB's deliveries answered 2xx, in order: %v, want b1 b2", got)
	}
	if _, at := s.rc.seen("", "a2"); len(at) != 3 || at[2].Sub(at[1]) < 120*time.Second {
		t.Errorf("a2's attempts at %v: want a third at least 120 s (Retry-After) after the 429", at)
	}
	ds, _, err := s.db.Deliveries(t.Context(), s.hook.BrandID, s.hook.ID, hotzone.DeliveryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Status != hotzone.DeliveryDelivered {
			t.Errorf("delivery of %s: %s, want delivered", d.Happening.ID, d.Status)
		}
		if d.Happening.ID == "a1" && (d.Attempts != 2 || d.LastCode != 204) {
			t.Errorf("a1: %d attempts, last %d; want 2, the last 204", d.Attempts, d.LastCode)
		}
		if d.Happening.ID == "b1" && d.Attempts != 2 {
			t.Errorf("b1: %d attempts; want 2, the first timing out", d.Attempts)
		}
	}
	if w, _ := s.db.Webhook(t.Context(), s.hook.BrandID, s.hook.ID); !w.FailingSince.IsZero() {
		t.Errorf("after the last success the webhook is still failing since %v", w.FailingSince)
	}
}

// TestFailsAfterADay: a receiver that always answers 503 gets attempts
// for 24 hours, then the delivery fails and the device's next one goes.
func TestFailsAfterADay(t *testing.T) {
	s := newSetup(t, true, func(id string, _ int, w http.ResponseWriter) {
		if id == "c1" {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	s.emit(t, "devC", "c1", "c2")
	s.run(t, 200, 30*time.Minute)
	c1, _, _ := s.db.Deliveries(t.Context(), s.hook.BrandID, s.hook.ID, hotzone.DeliveryQuery{Status: hotzone.DeliveryFailed})
	if len(c1) != 1 || c1[0].Happening.ID != "c1" || c1[0].LastCode != 503 {
		t.Fatalf("failed deliveries: %+v, want c1 after 503s", c1)
	}
	_, at := s.rc.seen("", "c1")
	if span := at[len(at)-1].Sub(at[0]); span > hook.RetryFor || span < hook.RetryFor-2*time.Hour {
		t.Errorf("c1 was tried over %v (%d attempts), want close to 24 h", span, len(at))
	}
	if got, _ := s.rc.seen("devC", ""); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("devC got %v, want c2 once c1 failed", got)
	}
}

// TestPrivateReceiverRefused: without AllowPrivate, a receiver on
// loopback is never reached, and its deliveries fail at once.
func TestPrivateReceiverRefused(t *testing.T) {
	s := newSetup(t, false, func(string, int, http.ResponseWriter) { t.Error("a private receiver was reached") })
	s.emit(t, "devD", "d1")
	s.run(t, 3, time.Second)
	ds, _, _ := s.db.Deliveries(t.Context(), s.hook.BrandID, s.hook.ID, hotzone.DeliveryQuery{})
	if len(ds) != 1 || ds[0].Status != hotzone.DeliveryFailed || ds[0].Attempts != 1 || !strings.Contains(ds[0].LastError, "not public") {
		t.Errorf("delivery to a loopback receiver: %+v, want failed at once as not public", ds)
	}
}
