package push

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/hotzone/hotzone"
)

// DefaultFCMEndpoint is FCM's HTTP v1 API, path included.
const DefaultFCMEndpoint = "https://fcm.googleapis.com/v1"

// fcmScope is what the service account's access token must allow.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// newFCMClient builds the real firebase messaging client for a brand.
// The OAuth token fetch (to the service account's token_uri) and the
// sends both go through base, which trusts the configured CAs; endpoint
// replaces FCM's when set.
func newFCMClient(ctx context.Context, c hotzone.PushCredentials, endpoint string, base http.RoundTripper) (*messaging.Client, oauth2.TokenSource, error) {
	hc := &http.Client{Transport: base, Timeout: sendTimeout}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	creds, err := google.CredentialsFromJSONWithType(ctx, c.Secret, google.ServiceAccount, fcmScope)
	if err != nil {
		return nil, nil, err
	}
	if endpoint == "" {
		endpoint = DefaultFCMEndpoint
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: c.ProjectID},
		option.WithHTTPClient(oauth2.NewClient(ctx, creds.TokenSource)), option.WithEndpoint(endpoint))
	if err != nil {
		return nil, nil, err
	}
	client, err := app.Messaging(ctx)
	return client, creds.TokenSource, err
}

// fcmSender sends one brand's notifications through FCM. The firebase
// client already retries a 503 by itself (4 retries, 0–4 s apart, Retry-
// After honoured up to 2 min), so one Send may take seconds; our own
// retries come on top, per notification, through the outbox.
type fcmSender struct {
	client  *messaging.Client
	tokens  oauth2.TokenSource
	limit   waiter
	pace    float64 // the limit's rate, per second (Paced)
	retry   RetryPolicy
	now     func() time.Time
	broken  func(reason string)
	healthy func()
}

// fcmMessage renders the event for FCM: notification title and body (of
// the notification's variant), the
// ids as data, high priority and a TTL until ends_at on Android, and the
// APNs block for iOS tokens sent through FCM.
func fcmMessage(m Message, now time.Time) *messaging.Message {
	ev := m.Event
	title, body := ev.Text(m.Notification.Variant)
	ttl := max(ev.EndsAt.Sub(now), time.Second)
	data := map[string]string{"event_id": ev.ID, "store_id": ev.StoreID, "notification_id": m.Notification.ID}
	if ev.URL != nil {
		data["url"] = *ev.URL
	}
	custom := map[string]any{"event_id": ev.ID, "store_id": ev.StoreID, "url": ev.URL, "notification_id": m.Notification.ID}
	return &messaging.Message{
		Token:        m.Device.Token,
		Notification: &messaging.Notification{Title: title, Body: body},
		Data:         data,
		Android:      &messaging.AndroidConfig{Priority: "high", TTL: &ttl, CollapseKey: ev.ID},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{
				"apns-priority":    "10",
				"apns-push-type":   "alert",
				"apns-expiration":  strconv.FormatInt(ev.EndsAt.Unix(), 10),
				"apns-collapse-id": ev.ID,
			},
			Payload: &messaging.APNSPayload{
				Aps:        &messaging.Aps{Alert: &messaging.ApsAlert{Title: title, Body: body}, Sound: "default"},
				CustomData: custom,
			},
		},
	}
}

// Send implements Sender.
func (s *fcmSender) Send(ctx context.Context, m Message) hotzone.Delivery {
	if err := s.limit.Wait(ctx); err != nil {
		return hotzone.Delivery{Status: hotzone.StatusQueued, Error: "shutting down", NextAttempt: s.now(), At: s.now()}
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	name, err := s.client.Send(ctx, fcmMessage(m, s.now()))
	now := s.now()
	attempt := m.Notification.Attempts + 1
	if err == nil {
		s.healthy()
		return hotzone.Delivery{Status: hotzone.StatusSent, ProviderID: name, At: now}
	}
	d := s.classify(err, attempt, now)
	d.Code = fcmCode(err)
	return d
}

// fcmCode names a firebase error for metrics: its HTTP status, or
// "network" when there was no answer.
func fcmCode(err error) string {
	if st := httpStatus(err); st != 0 {
		return strconv.Itoa(st)
	}
	return "network"
}

// classify maps a firebase error to a delivery.
func (s *fcmSender) classify(err error, attempt int, now time.Time) hotzone.Delivery {
	text := "fcm: " + err.Error()
	if httpStatus(err) == 0 && s.credentialsRejected() {
		// firebase hides a failed token fetch behind a bare UNKNOWN
		// error; asking the token source directly tells a rejected key
		// from a network fault.
		s.broken(text)
		return hotzone.Delivery{Status: hotzone.StatusQueued, Error: text, NextAttempt: now.Add(heldRetry), At: now}
	}
	switch {
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err), messaging.IsInvalidArgument(err):
		// Our message is well-formed, so INVALID_ARGUMENT names the token.
		return hotzone.Delivery{Status: hotzone.StatusInvalidToken, Error: text, At: now}
	case messaging.IsThirdPartyAuthError(err),
		errorutils.IsUnauthenticated(err), errorutils.IsPermissionDenied(err):
		s.broken(text)
		return hotzone.Delivery{Status: hotzone.StatusQueued, Error: text, NextAttempt: now.Add(heldRetry), At: now}
	case messaging.IsQuotaExceeded(err), errorutils.IsResourceExhausted(err), httpStatus(err) == http.StatusTooManyRequests:
		// IsQuotaExceeded needs FCM's error detail; a bare 429 is caught
		// by the generic status.
		return s.retry.next(attempt, retryAfterOf(err, now), text, now)
	case messaging.IsUnavailable(err), messaging.IsInternal(err), errorutils.IsUnavailable(err), errorutils.IsInternal(err),
		errorutils.IsDeadlineExceeded(err), httpStatus(err) == 0, httpStatus(err) >= 500:
		return s.retry.next(attempt, retryAfterOf(err, now), text, now)
	}
	return hotzone.Delivery{Status: hotzone.StatusFailed, Error: text, At: now}
}

// credentialsRejected fetches an access token and tells whether the
// token endpoint refused the service account (as opposed to not
// answering). The token source caches a valid token, so this costs a
// request only when no valid token is held.
func (s *fcmSender) credentialsRejected() bool {
	_, err := s.tokens.Token()
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500
}

// httpStatus is the HTTP status behind a firebase error, 0 when there
// was no response (a network error).
func httpStatus(err error) int {
	if r := errorutils.HTTPResponse(err); r != nil {
		return r.StatusCode
	}
	return 0
}

func retryAfterOf(err error, now time.Time) time.Duration {
	if r := errorutils.HTTPResponse(err); r != nil {
		return parseRetryAfter(r.Header, now)
	}
	return 0
}

// Pace implements Paced: the lane's send rate limit.
func (s *fcmSender) Pace() float64 { return s.pace }
