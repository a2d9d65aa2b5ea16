package pushtest_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/hotzone/hotzone/push/pushtest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
)

const (
	projectID = "hotzone-test"
	regToken  = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
)

// newFCM starts a fake with one service account and returns it with the
// real firebase messaging client for that account.
func newFCM(t *testing.T) (*pushtest.FCM, *messaging.Client) {
	t.Helper()
	f := pushtest.NewFCM(t)
	sa, _ := f.NewServiceAccount(projectID)
	c, err := f.App(t.Context(), sa)
	if err != nil {
		t.Fatalf("App: %v", err)
	}
	return f, c
}

// sendCtx bounds a send: the firebase client has no timeout of its own.
func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFCMSend(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	ttl := time.Hour
	badge := 1
	m := &messaging.Message{
		Token:        regToken,
		Notification: &messaging.Notification{Title: "Flash sale", Body: "20% off at Main St"},
		Data:         map[string]string{"event_id": "ev1", "store_id": "st1"},
		Android:      &messaging.AndroidConfig{Priority: "high", TTL: &ttl, CollapseKey: "fence-42"},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{"apns-priority": "10", "apns-push-type": "alert"},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Badge: &badge}},
		},
	}
	name, err := c.Send(sendCtx(t), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !regexp.MustCompile(`^projects/hotzone-test/messages/0:[0-9]+%[0-9a-f]+$`).MatchString(name) {
		t.Errorf("Send = %q, want projects/hotzone-test/messages/<id>", name)
	}
	// A TTL with a fraction of a second goes out as "1.500000000s".
	frac := 1500 * time.Millisecond
	m2 := *m
	m2.Android = &messaging.AndroidConfig{TTL: &frac}
	if _, err := c.Send(sendCtx(t), &m2); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	dry, err := c.SendDryRun(sendCtx(t), m)
	if err != nil || dry != "projects/hotzone-test/messages/fake_message_id" {
		t.Errorf("SendDryRun = %q, %v; want projects/hotzone-test/messages/fake_message_id", dry, err)
	}

	got := f.Received()
	if len(got) != 3 {
		t.Fatalf("Received() has %d messages, want 3", len(got))
	}
	r := got[0]
	if r.Project != projectID || r.Token != regToken || r.Name != name || r.ValidateOnly ||
		r.Notification != (pushtest.FCMNotification{Title: "Flash sale", Body: "20% off at Main St"}) ||
		r.Data["event_id"] != "ev1" || r.Data["store_id"] != "st1" {
		t.Errorf("Received()[0] = %+v", r)
	}
	if r.Android.Priority != "high" || r.Android.TTL == nil || *r.Android.TTL != ttl || r.Android.CollapseKey != "fence-42" {
		t.Errorf("android = %+v, want high, 1h, fence-42", r.Android)
	}
	if r.APNs.Headers["apns-priority"] != "10" || string(r.APNs.Payload) != `{"aps":{"badge":1}}` {
		t.Errorf("apns = %v %s", r.APNs.Headers, r.APNs.Payload)
	}
	if ttl := got[1].Android.TTL; ttl == nil || *ttl != frac {
		t.Errorf("android ttl = %v, want %v", ttl, frac)
	}
	if !got[2].ValidateOnly {
		t.Error("the dry run is not marked ValidateOnly")
	}
	// One token serves every send; dry runs are not deliveries.
	if f.TokenRequests() != 1 || f.Count(regToken) != 2 || f.Attempts(regToken) != 3 {
		t.Errorf("TokenRequests, Count, Attempts = %d, %d, %d; want 1, 2, 3", f.TokenRequests(), f.Count(regToken), f.Attempts(regToken))
	}
}

func TestFCMSendEachSharesOneToken(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	var ms []*messaging.Message
	for i := range 200 {
		ms = append(ms, &messaging.Message{Token: fmt.Sprintf("tok-%03d", i), Data: map[string]string{"i": fmt.Sprint(i)}})
	}
	f.Script("tok-007", pushtest.Answer{Reason: "UNREGISTERED"})
	br, err := c.SendEach(sendCtx(t), ms)
	if err != nil {
		t.Fatalf("SendEach: %v", err)
	}
	if br.SuccessCount != 199 || br.FailureCount != 1 || !messaging.IsUnregistered(br.Responses[7].Error) {
		t.Errorf("SendEach = %d ok, %d failed, [7] %v; want 199, 1, unregistered", br.SuccessCount, br.FailureCount, br.Responses[7].Error)
	}
	if f.TokenRequests() != 1 || len(f.Received()) != 199 {
		t.Errorf("TokenRequests, Received = %d, %d; want 1, 199", f.TokenRequests(), len(f.Received()))
	}
}

func TestFCMErrors(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	tests := []struct {
		name     string
		answer   pushtest.Answer
		token    string // the registration token, when not scripted
		is       func(error) bool
		platform func(error) bool
		status   int
	}{
		{"unregistered", pushtest.Answer{Reason: "UNREGISTERED"}, "", messaging.IsUnregistered, errorutils.IsNotFound, 404},
		{"404 alone", pushtest.Answer{Status: 404}, "", messaging.IsUnregistered, errorutils.IsNotFound, 404},
		{"invalid argument", pushtest.Answer{Reason: "INVALID_ARGUMENT"}, "", messaging.IsInvalidArgument, errorutils.IsInvalidArgument, 400},
		{"malformed token", pushtest.Answer{}, "not a token!", messaging.IsInvalidArgument, errorutils.IsInvalidArgument, 400},
		{"quota exceeded", pushtest.Answer{Reason: "QUOTA_EXCEEDED", RetryAfter: 30 * time.Second}, "", messaging.IsQuotaExceeded, errorutils.IsResourceExhausted, 429},
		{"sender id mismatch", pushtest.Answer{Reason: "SENDER_ID_MISMATCH"}, "", messaging.IsSenderIDMismatch, errorutils.IsPermissionDenied, 403},
		{"third party auth", pushtest.Answer{Reason: "THIRD_PARTY_AUTH_ERROR"}, "", messaging.IsThirdPartyAuthError, errorutils.IsUnauthenticated, 401},
		{"internal", pushtest.Answer{Status: 500}, "", messaging.IsInternal, errorutils.IsInternal, 500},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token
			if tok == "" {
				tok = fmt.Sprintf("tok-%d", i)
				f.Script(tok, tt.answer)
			}
			_, err := c.Send(sendCtx(t), &messaging.Message{Token: tok, Data: map[string]string{"k": "v"}})
			if err == nil || !tt.is(err) || !tt.platform(err) {
				t.Fatalf("Send error = %v; the messaging and errorutils helpers do not recognise it", err)
			}
			res := errorutils.HTTPResponse(err)
			if res == nil || res.StatusCode != tt.status {
				t.Fatalf("HTTPResponse = %v, want status %d", res, tt.status)
			}
			if tt.status == 429 && res.Header.Get("Retry-After") != "30" {
				t.Errorf("Retry-After = %q, want 30", res.Header.Get("Retry-After"))
			}
			// None of these is retried by the client.
			if tt.token == "" && f.Attempts(tok) != 1 {
				t.Errorf("Attempts = %d, want 1", f.Attempts(tok))
			}
			// The helpers use a type assertion, not errors.As.
			if wrapped := fmt.Errorf("push: send: %w", err); tt.is(wrapped) {
				t.Errorf("helper sees through a wrapped error; the pushtest doc says it does not")
			}
		})
	}
}

func TestFCMRetriesUnavailable(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		f.Script("tok-a", pushtest.Answer{Status: 503}, pushtest.Answer{Status: 503}, pushtest.Answer{})
		start := time.Now()
		if _, err := c.Send(sendCtx(t), &messaging.Message{Token: "tok-a"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		// Retry 1 at once, retry 2 after 1 s.
		if f.Attempts("tok-a") != 3 || f.Count("tok-a") != 1 || time.Since(start) < time.Second {
			t.Errorf("Attempts, Count, elapsed = %d, %d, %v; want 3, 1, ≥1s", f.Attempts("tok-a"), f.Count("tok-a"), time.Since(start))
		}
	})
	t.Run("gives up after 5 attempts", func(t *testing.T) {
		t.Parallel()
		f.Script("tok-b", pushtest.Answer{Status: 503})
		start := time.Now()
		_, err := c.Send(sendCtx(t), &messaging.Message{Token: "tok-b"})
		elapsed := time.Since(start)
		if !messaging.IsUnavailable(err) {
			t.Fatalf("Send error = %v, want unavailable", err)
		}
		// 1 try + 4 retries, after 0 + 1 + 2 + 4 s.
		if f.Attempts("tok-b") != 5 || elapsed < 7*time.Second {
			t.Errorf("Attempts, elapsed = %d, %v; want 5, ≥7s", f.Attempts("tok-b"), elapsed)
		}
	})
	t.Run("drop is retried", func(t *testing.T) {
		t.Parallel()
		f.Script("tok-c", pushtest.Answer{Drop: true}, pushtest.Answer{})
		if _, err := c.Send(sendCtx(t), &messaging.Message{Token: "tok-c"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		// The client resends a POST whose answer it lost: had the first
		// reached the phone, it would now get two.
		if f.Attempts("tok-c") != 2 || f.Count("tok-c") != 1 {
			t.Errorf("Attempts, Count = %d, %d; want 2, 1", f.Attempts("tok-c"), f.Count("tok-c"))
		}
	})
	t.Run("a context deadline ends the retries", func(t *testing.T) {
		t.Parallel()
		f.Script("tok-d", pushtest.Answer{Status: 503})
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		_, err := c.Send(ctx, &messaging.Message{Token: "tok-d"})
		if !errors.Is(err, context.DeadlineExceeded) || f.Attempts("tok-d") != 3 {
			t.Errorf("Send error = %v after %d attempts, want the context's deadline after 3 (at 0, 0 and 1 s)", err, f.Attempts("tok-d"))
		}
	})
}

// withKey returns saJSON with its private key replaced.
func withKey(t *testing.T, saJSON []byte, key *rsa.PrivateKey) []byte {
	t.Helper()
	var sa map[string]any
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sa["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, err := json.Marshal(sa)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFCMBadServiceAccountKey(t *testing.T) {
	t.Parallel()
	f := pushtest.NewFCM(t)
	sa, _ := f.NewServiceAccount(projectID)
	wrong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	bad := withKey(t, sa, wrong)

	t.Run("token endpoint", func(t *testing.T) {
		t.Parallel()
		// What a sender can do to check credentials on upload: fetch a
		// token itself and read Google's OAuth error.
		creds, err := google.CredentialsFromJSONWithType(t.Context(), bad, google.ServiceAccount, pushtest.FCMScope)
		if err != nil {
			t.Fatal(err)
		}
		_, err = creds.TokenSource.Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("Token() error = %v, want an *oauth2.RetrieveError", err)
		}
		// The JWT flow leaves ErrorCode and ErrorDescription empty; Google's
		// answer is only in Body.
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(re.Body, &body); err != nil || re.Response.StatusCode != 400 ||
			body.Error != "invalid_grant" || body.Description != "Invalid JWT Signature." || re.ErrorCode != "" {
			t.Errorf("Token() error = %v (ErrorCode %q), want 400 invalid_grant \"Invalid JWT Signature.\" in the body", err, re.ErrorCode)
		}
	})
	t.Run("send", func(t *testing.T) {
		t.Parallel()
		c, err := f.App(t.Context(), bad)
		if err != nil {
			t.Fatalf("App: %v", err) // the key is only used on the first send
		}
		_, err = c.Send(sendCtx(t), &messaging.Message{Token: regToken})
		if err == nil {
			t.Fatal("Send with a rejected key succeeded")
		}
		// The token error comes out of the transport, so the client
		// retries it as a network error, and then reports it as UNKNOWN
		// with the OAuth answer only in the text.
		if !errorutils.IsUnknown(err) || errorutils.HTTPResponse(err) != nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("Send error = %v, want UNKNOWN mentioning invalid_grant", err)
		}
		if f.Attempts(regToken) != 0 {
			t.Errorf("Attempts = %d, want 0: nothing reached the send method", f.Attempts(regToken))
		}
	})
	t.Cleanup(func() {
		// 1 by the token-endpoint case, 5 by the send (1 try + 4 retries).
		if f.TokenRequests() != 6 {
			t.Errorf("TokenRequests = %d, want 6", f.TokenRequests())
		}
	})
}

func TestFCMAuthorization(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	if _, err := c.Send(sendCtx(t), &messaging.Message{Token: regToken}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	f.RevokeAccessTokens()
	_, err := c.Send(sendCtx(t), &messaging.Message{Token: regToken})
	if !errorutils.IsUnauthenticated(err) || !strings.HasPrefix(err.Error(), "Request had invalid authentication credentials.") {
		t.Errorf("Send with a revoked token = %v, want UNAUTHENTICATED", err)
	}
	// The client keeps its cached token until it expires.
	if f.TokenRequests() != 1 {
		t.Errorf("TokenRequests = %d, want 1", f.TokenRequests())
	}

	// No token at all: Google's 401 body.
	res, err := http.Post(f.Endpoint()+"/projects/"+projectID+"/messages:send", "application/json", strings.NewReader(`{"message":{"token":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var ge struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &ge); err != nil || res.StatusCode != 401 || ge.Error.Code != 401 || ge.Error.Status != "UNAUTHENTICATED" ||
		res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("send without a token = %d %s", res.StatusCode, body)
	}

	// A token of one project may not send to another.
	sa, _ := f.NewServiceAccount("other-project")
	app, err := firebase.NewApp(t.Context(), &firebase.Config{ProjectID: projectID},
		option.WithCredentialsJSON(sa), option.WithEndpoint(f.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	other, err := app.Messaging(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Send(sendCtx(t), &messaging.Message{Token: regToken}); !errorutils.IsPermissionDenied(err) {
		t.Errorf("Send to another project = %v, want PERMISSION_DENIED", err)
	}
}

func TestFCMRequestChecks(t *testing.T) {
	t.Parallel()
	f := pushtest.NewFCM(t)
	sa, _ := f.NewServiceAccount(projectID)
	creds, err := google.CredentialsFromJSONWithType(t.Context(), sa, google.ServiceAccount, pushtest.FCMScope)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		body    string
		status  int
		message string // a prefix of error.message
	}{
		{"accepted", `{"message":{"token":"abc","data":{"k":"v"}}}`, 200, ""},
		{"lowerCamelCase names", `{"validateOnly":true,"message":{"token":"abc","android":{"collapseKey":"k","ttl":"3.5s"}}}`, 200, ""},
		{"unknown name", `{"message":{"token":"abc","androidd":{}}}`, 400, `Invalid JSON payload received. Unknown name "androidd" at 'message'`},
		{"unknown top-level name", `{"msg":{"token":"abc"}}`, 400, `Invalid JSON payload received. Unknown name "msg"`},
		{"not JSON", `{"message":`, 400, "Invalid JSON payload received."},
		{"no recipient", `{"message":{"data":{"k":"v"}}}`, 400, "Recipient of the message is not set."},
		{"two recipients", `{"message":{"token":"abc","topic":"news"}}`, 400, "Invalid value at 'message' (oneof)"},
		{"data not strings", `{"message":{"token":"abc","data":{"n":1}}}`, 400, "Invalid value at 'message.data'"},
		{"reserved data key", `{"message":{"token":"abc","data":{"from":"x"}}}`, 400, "Invalid data payload key: from"},
		{"bad ttl", `{"message":{"token":"abc","android":{"ttl":"3600"}}}`, 400, "Invalid value at 'message.android.ttl'"},
		{"bad priority", `{"message":{"token":"abc","android":{"priority":"urgent"}}}`, 400, "Invalid value at 'message.android.priority'"},
		{"topic", `{"message":{"topic":"news","notification":{"title":"t"}}}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.Endpoint()+"/projects/"+projectID+"/messages:send", strings.NewReader(tt.body))
			tok.SetAuthHeader(req)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b struct {
				Name  string `json:"name"`
				Error struct {
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status || !strings.HasPrefix(b.Error.Message, tt.message) {
				t.Errorf("send %s = %d %q, want %d %q...", tt.body, res.StatusCode, b.Error.Message, tt.status, tt.message)
			}
			if tt.status == 400 && b.Error.Status != "INVALID_ARGUMENT" {
				t.Errorf("status = %q, want INVALID_ARGUMENT", b.Error.Status)
			}
		})
	}
	if f.Count("/topics/news") != 1 {
		t.Errorf("Count(/topics/news) = %d, want 1", f.Count("/topics/news"))
	}
}

func TestFCMFailRandomly(t *testing.T) {
	t.Parallel()
	f, c := newFCM(t)
	f.FailRandomly(1, []int{429, 500}, 7) // no 503: the client would sleep
	seen := map[string]int{}
	for i := range 40 {
		_, err := c.Send(sendCtx(t), &messaging.Message{Token: fmt.Sprintf("tok-%d", i)})
		switch {
		case messaging.IsQuotaExceeded(err):
			seen["quota"]++
			if errorutils.HTTPResponse(err).Header.Get("Retry-After") != "1" {
				t.Errorf("random 429 without Retry-After: 1")
			}
		case messaging.IsInternal(err):
			seen["internal"]++
		default:
			t.Errorf("Send = %v, want quota exceeded or internal", err)
		}
	}
	if seen["quota"] == 0 || seen["internal"] == 0 {
		t.Errorf("answers %v, want both kinds", seen)
	}
	f.FailRandomly(0, nil, 0)
	if _, err := c.Send(sendCtx(t), &messaging.Message{Token: "tok-x"}); err != nil {
		t.Errorf("Send after FailRandomly(0) = %v", err)
	}
}
