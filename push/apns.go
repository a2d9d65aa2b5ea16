package push

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/hotzone/hotzone"
)

// sendTimeout bounds one push: apns2 has known hangs under load, so every
// push carries a deadline.
const sendTimeout = 15 * time.Second

// apnsSender sends one brand's notifications through one long-lived
// apns2 client: one HTTP/2 connection, one provider JWT refreshed by
// apns2's token (every 50 minutes, inside Apple's 20–60 minute window).
type apnsSender struct {
	client  *apns2.Client
	topic   string
	limit   waiter
	pace    float64 // the limit's rate, per second (Paced)
	retry   RetryPolicy
	now     func() time.Time
	broken  func(reason string) // credentials rejected
	healthy func()              // a push went through
}

// newAPNsClient builds the apns2 client for a brand. host is the APNs
// base URL; transport is shared setup (trusted CAs).
func newAPNsClient(c hotzone.PushCredentials, host string, tlsConf *tls.Config) (*apns2.Client, error) {
	key, err := token.AuthKeyFromBytes(c.Secret)
	if err != nil {
		return nil, err
	}
	client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: c.KeyID, TeamID: c.TeamID})
	if host == "" {
		host = apns2.HostProduction
		if c.Environment == "development" {
			host = apns2.HostDevelopment
		}
	}
	client.Host = host
	tr := &http.Transport{
		// Each transport gets its own copy: net/http writes NextProtos
		// into the config it is given.
		TLSClientConfig:   tlsConf.Clone(),
		ForceAttemptHTTP2: true,
		// APNs answers are a few bytes of JSON: asking for gzip would
		// only add a header to every push.
		DisableCompression: true,
		// One connection per brand: without these, a burst on a cold
		// client dials hundreds of connections at once (measured ~700
		// for 500 pushes), which Apple treats as abuse. Streams beyond
		// the server's limit wait for a free one instead of dialing.
		MaxConnsPerHost: 1,
		HTTP2: &http.HTTP2Config{
			StrictMaxConcurrentRequests: true,
			// HTTP/2 pings find a dead connection before a push waits on
			// it (apns2's ReadIdleTimeout, on the standard transport).
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
	var protos http.Protocols
	protos.SetHTTP2(true) // APNs speaks only HTTP/2
	tr.Protocols = &protos
	// No Client.Timeout: every push carries its own deadline (Send),
	// and a client timeout over a wrapped transport costs a goroutine
	// and a timer per request in net/http.
	client.HTTPClient = &http.Client{Transport: answerTransport{tr}}
	return client, nil
}

// Send implements Sender.
func (s *apnsSender) Send(ctx context.Context, m Message) hotzone.Delivery {
	if err := s.limit.Wait(ctx); err != nil {
		return hotzone.Delivery{Status: hotzone.StatusQueued, Error: "shutting down", NextAttempt: s.now(), At: s.now()}
	}
	ev := m.Event
	n := &apns2.Notification{
		DeviceToken: m.Device.Token,
		Topic:       s.topic,
		Payload:     cachedAPNsPayload(ev, m.Notification.Variant, m.Notification.ID),
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		// ends_at is always in the future for a live event, so this is
		// never the zero time apns2 would leave out (it cannot send 0).
		Expiration: ev.EndsAt,
		CollapseID: ev.ID,
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	var ra answerHolder
	res, err := s.client.PushWithContext(withAnswer(ctx, &ra), n)
	now := s.now()
	attempt := m.Notification.Attempts + 1
	if err != nil {
		d := s.retry.next(attempt, 0, "apns: "+err.Error(), now)
		d.Code = "network"
		return d
	}
	if gone, ok := ra.goneAt(); ok {
		// apns2 keeps whole seconds of the 410's timestamp; a token
		// registered later in that second would look newer than it is.
		res.Timestamp.Time = gone
	}
	d := s.classify(res, attempt, ra.retryAfter(), now)
	if d.Status != hotzone.StatusSent {
		d.Code = strconv.Itoa(res.StatusCode) + " " + res.Reason
	}
	return d
}

// classify maps an APNs answer to a delivery.
func (s *apnsSender) classify(res *apns2.Response, attempt int, retryAfter time.Duration, now time.Time) hotzone.Delivery {
	switch {
	case res.StatusCode == http.StatusOK:
		s.healthy()
		return hotzone.Delivery{Status: hotzone.StatusSent, ProviderID: res.ApnsID, At: now}
	case res.StatusCode == http.StatusGone || res.Reason == apns2.ReasonUnregistered:
		// The token stopped being valid at Timestamp; a token the app
		// registered after that is new and is kept.
		return hotzone.Delivery{Status: hotzone.StatusInvalidToken, Error: "apns: 410 " + res.Reason, TokenInvalidSince: res.Timestamp.Time, At: now}
	case res.Reason == apns2.ReasonBadDeviceToken || res.Reason == apns2.ReasonDeviceTokenNotForTopic:
		return hotzone.Delivery{Status: hotzone.StatusInvalidToken, Error: "apns: " + res.Reason, At: now}
	case res.StatusCode == http.StatusForbidden:
		// InvalidProviderToken, ExpiredProviderToken, BadCertificate…:
		// nothing of this brand can go out until new credentials come.
		s.broken("APNs answered 403 " + res.Reason)
		return hotzone.Delivery{Status: hotzone.StatusQueued, Error: "apns: 403 " + res.Reason, NextAttempt: now.Add(heldRetry), At: now}
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return s.retry.next(attempt, retryAfter, "apns: "+http.StatusText(res.StatusCode)+" "+res.Reason, now)
	}
	return hotzone.Delivery{Status: hotzone.StatusFailed, Error: "apns: " + http.StatusText(res.StatusCode) + " " + res.Reason, At: now}
}

// heldRetry is how soon notifications held by broken credentials look
// again; new credentials are picked up at the next look.
const heldRetry = 10 * time.Second

// answerTransport copies what apns2's Response leaves out into the
// request's context holder: the Retry-After header, and a 410's
// timestamp to the millisecond (apns2 truncates it to the second).
type answerTransport struct{ next http.RoundTripper }

// maxGoneBody bounds the 410 body read here; APNs sends a few dozen
// bytes.
const maxGoneBody = 4 << 10

func (t answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	h, ok := r.Context().Value(answerKey{}).(*answerHolder)
	if !ok {
		return resp, nil
	}
	h.setRetryAfter(parseRetryAfter(resp.Header, time.Now()))
	if resp.StatusCode == http.StatusGone {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxGoneBody))
		_ = resp.Body.Close()
		// apns2 reads the same bytes after us.
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			var v struct {
				Timestamp *int64 `json:"timestamp"`
			}
			if json.Unmarshal(body, &v) == nil && v.Timestamp != nil {
				h.setGone(time.UnixMilli(*v.Timestamp))
			}
		}
	}
	return resp, nil
}

type answerKey struct{}

// answerHolder is what answerTransport found in one push's answer.
type answerHolder struct {
	mu   sync.Mutex
	ra   time.Duration
	gone time.Time
}

func (h *answerHolder) setRetryAfter(d time.Duration) { h.mu.Lock(); h.ra = d; h.mu.Unlock() }
func (h *answerHolder) retryAfter() time.Duration     { h.mu.Lock(); defer h.mu.Unlock(); return h.ra }
func (h *answerHolder) setGone(t time.Time)           { h.mu.Lock(); h.gone = t; h.mu.Unlock() }

// goneAt is a 410's timestamp to the millisecond, if there was one.
func (h *answerHolder) goneAt() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gone, !h.gone.IsZero()
}

func withAnswer(ctx context.Context, h *answerHolder) context.Context {
	return context.WithValue(ctx, answerKey{}, h)
}

// Pace implements Paced: the lane's send rate limit.
func (s *apnsSender) Pace() float64 { return s.pace }
