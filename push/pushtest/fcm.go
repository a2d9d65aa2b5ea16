package pushtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// What the fake, like Google, accepts and issues.
const (
	// FCMGrantType is the grant_type of the service-account (two-legged
	// JWT bearer) token request.
	FCMGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// FCMAccessTokenLifetime is the expires_in of an access token; Google
	// says 3599 seconds.
	FCMAccessTokenLifetime = 3599 * time.Second
	// FCMScope is the OAuth scope that allows sending; the broader
	// cloud-platform scope, which the firebase client asks for, does too.
	FCMScope = "https://www.googleapis.com/auth/firebase.messaging"
	// fcmCloudPlatformScope also allows sending.
	fcmCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	// fcmErrorType is the @type of the details entry that carries FCM's
	// errorCode, the one firebase-admin-go looks for.
	fcmErrorType = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
)

// FCM is a fake of Firebase Cloud Messaging's HTTP v1 API
// (fcm.googleapis.com/v1) and of Google's OAuth 2.0 token endpoint
// (oauth2.googleapis.com/token) as a service account uses it. It is safe
// for concurrent use.
//
// The token endpoint, TokenURL, takes grant_type=FCMGrantType with an
// assertion: an RS256 JWT signed by the key of an account registered with
// NewServiceAccount or AddServiceAccount, iss its client_email, aud the
// token URL, a scope, and iat and exp less than an hour apart around now.
// It answers {"access_token":"ya29...","expires_in":3599,"token_type":
// "Bearer"}, or 400 {"error":"invalid_grant","error_description":
// "Invalid JWT Signature."} and Google's other OAuth errors.
//
// The send method, POST Endpoint()+"/projects/{project}/messages:send",
// requires "Authorization: Bearer <an access token it issued>" (else 401
// UNAUTHENTICATED), issued to an account of that project with a scope
// that allows sending (else 403 PERMISSION_DENIED). It decodes the body
// as Google does: the proto field names or their lowerCamelCase, unknown
// names refused (400 INVALID_ARGUMENT), exactly one of token, topic and
// condition, a token of FCM's alphabet, no reserved data keys, a valid
// android priority and ttl. A request that passes gets its Answer (see
// Script); success is 200 {"name":"projects/{project}/messages/<id>"},
// with the id "fake_message_id" when validate_only is set, as FCM does.
//
// Errors are Google's JSON error body, {"error":{"code":404,"message":
// "...","status":"NOT_FOUND","details":[{"@type":
// "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":
// "UNREGISTERED"}]}}, with these codes: UNREGISTERED 404 NOT_FOUND;
// INVALID_ARGUMENT 400 INVALID_ARGUMENT (with a google.rpc.BadRequest
// naming message.token); SENDER_ID_MISMATCH 403 PERMISSION_DENIED;
// QUOTA_EXCEEDED 429 RESOURCE_EXHAUSTED, with Retry-After (1 s unless the
// Answer says); THIRD_PARTY_AUTH_ERROR 401 UNAUTHENTICATED; INTERNAL 500
// INTERNAL; UNAVAILABLE 503 UNAVAILABLE.
//
// # How firebase-admin-go v4.19.0 behaves against it
//
// Retries (internal/http_client.go, WithDefaultRetryConfig, used by the
// messaging client): a send is retried on any transport error (a dropped
// connection, a reset, a refused dial) and on HTTP 503 only; never on
// 500, 429 or anything else. MaxRetries is 4, so a send makes at most 5
// attempts. Before retry n (n = 0, 1, 2, 3) it sleeps 2^n × 0.5 s
// truncated to whole seconds: 0, 1 s, 2 s, 4 s, 7 s in all before it
// gives up; a Retry-After header longer than that is honoured, and one
// longer than 2 minutes means no retry at all. The sleep ends early only
// when the context is done, and then Send returns ctx.Err() itself, not a
// FirebaseError. The retried request is a POST: a send whose answer was
// lost can be delivered twice.
//
// Errors: a non-2xx answer becomes an *internal.FirebaseError whose
// ErrorCode is error.status (NOT_FOUND, RESOURCE_EXHAUSTED, ...) and whose
// Ext["messagingErrorCode"] is the errorCode of the FcmError detail; the
// messaging.IsUnregistered, IsInvalidArgument, IsQuotaExceeded,
// IsSenderIDMismatch, IsThirdPartyAuthError, IsInternal and IsUnavailable
// helpers read only that errorCode, and errorutils.IsNotFound and its
// siblings read only the status. All of them use a type assertion, not
// errors.As: they see nothing through a wrapped error, so classify the
// error before wrapping it. errorutils.HTTPResponse(err) gives the
// response with its headers (Retry-After). A transport error after the
// last retry is a FirebaseError with status UNAVAILABLE (dial or read
// failures), DEADLINE_EXCEEDED (timeouts) or UNKNOWN (the rest) and no
// messagingErrorCode.
//
// Endpoint: option.WithEndpoint is used verbatim when it contains "://";
// the send URL is that + "/projects/" + project + "/messages:send", so
// Endpoint is the fake's URL + "/v1". The token fetch does not use it:
// it POSTs (with http.DefaultClient, outside the send's context) to the
// token_uri of the service account JSON. Nothing else is contacted. The
// client has no timeout of its own: give every send a context deadline;
// but the deadline does not bound the token fetch, so a token endpoint
// that hangs holds Send past it. An access token is fetched on the first
// send, not by NewApp or Messaging, and reused until it expires (10 s
// early); a 401 does not make the client fetch a new one.
//
// A refused token request (a wrong or deleted key: 400 invalid_grant)
// comes out of the transport, so the client retries it like a network
// error (5 token requests, 7 s) and then reports a FirebaseError with
// status UNKNOWN, no HTTP response, and Google's OAuth answer only in the
// message text. To tell "credentials rejected" from "FCM is down" without
// matching text, fetch a token directly (golang.org/x/oauth2/google,
// CredentialsFromJSON then TokenSource.Token): that gives an
// *oauth2.RetrieveError whose Body holds {"error":"invalid_grant",...};
// its ErrorCode field stays empty in the JWT flow.
type FCM struct {
	t   testing.TB
	srv *httptest.Server
	*responder
	tokenReqs atomic.Int64

	mu       sync.Mutex
	accounts map[string]*fcmAccount // by client_email
	grants   map[string]fcmGrant    // by access token
	msgs     []FCMMessage
	counts   map[string]int
}

type fcmAccount struct {
	projectID string
	keys      map[string]*rsa.PublicKey // by private_key_id
}

type fcmGrant struct {
	email, projectID string
	scopes           []string
	expires          time.Time
}

// FCMMessage is one message the FCM fake accepted.
type FCMMessage struct {
	Project      string            // from the URL
	Token        string            // message.token
	Topic        string            // message.topic
	Condition    string            // message.condition
	ValidateOnly bool              // validate_only: checked, answered, not delivered
	Name         string            // the name answered
	Notification FCMNotification   // message.notification
	Data         map[string]string // message.data
	Android      FCMAndroid        // message.android
	APNs         FCMAPNs           // message.apns
	Message      json.RawMessage   // message as sent, webpush and all
	At           time.Time         // when the fake accepted it
}

// FCMNotification is the platform-independent notification of a message.
type FCMNotification struct {
	Title, Body, Image string
}

// FCMAndroid is the android part of a message.
type FCMAndroid struct {
	Priority     string         // "normal", "high" or "" as sent
	TTL          *time.Duration // nil when absent
	CollapseKey  string
	Data         map[string]string
	Notification json.RawMessage
}

// FCMAPNs is the apns part of a message.
type FCMAPNs struct {
	Headers map[string]string
	Payload json.RawMessage
}

// NewFCM starts an FCM fake on 127.0.0.1 (plain HTTP) and closes it when
// the test ends. Make service accounts with NewServiceAccount.
func NewFCM(t testing.TB) *FCM {
	t.Helper()
	f := &FCM{
		t:         t,
		responder: newResponder(),
		accounts:  map[string]*fcmAccount{},
		grants:    map[string]fcmGrant{},
		counts:    map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.serveSend)
	srv := httptest.NewUnstartedServer(mux)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pushtest: FCM listen: %v", err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnContext = withConn
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	f.srv = srv
	t.Cleanup(srv.Close)
	return f
}

// URL is the base URL of the fake, http://127.0.0.1:port.
func (f *FCM) URL() string { return f.srv.URL }

// Endpoint is what to give the firebase client as option.WithEndpoint:
// the fake's stand-in for https://fcm.googleapis.com/v1.
func (f *FCM) Endpoint() string { return f.srv.URL + "/v1" }

// TokenURL is the fake's OAuth 2.0 token endpoint, the token_uri of the
// service accounts it makes.
func (f *FCM) TokenURL() string { return f.srv.URL + "/token" }

// NewServiceAccount makes a service account of projectID with a new
// 2048-bit RSA key, registers it, and returns its JSON key file as the
// Google Cloud console would give it, with token_uri set to TokenURL, and
// the private key. It must be called from the test's goroutine.
func (f *FCM) NewServiceAccount(projectID string) (saJSON []byte, key *rsa.PrivateKey) {
	f.t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.t.Fatalf("pushtest: service account key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.t.Fatalf("pushtest: service account key: %v", err)
	}
	var id [20]byte
	rand.Read(id[:])
	keyID := hex.EncodeToString(id[:])
	clientID := fmt.Sprintf("1%020d", binary.BigEndian.Uint64(id[:8])%1e19)
	email := fmt.Sprintf("firebase-adminsdk-%s@%s.iam.gserviceaccount.com", keyID[:5], projectID)
	sa := map[string]string{
		"type":                        "service_account",
		"project_id":                  projectID,
		"private_key_id":              keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   clientID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   f.TokenURL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + strings.ReplaceAll(email, "@", "%40"),
		"universe_domain":             "googleapis.com",
	}
	b, err := json.MarshalIndent(sa, "", "  ")
	if err != nil {
		f.t.Fatalf("pushtest: service account JSON: %v", err)
	}
	f.AddServiceAccount(email, keyID, &key.PublicKey, projectID)
	return b, key
}

// AddServiceAccount registers a key of a service account of projectID;
// an account may have several keys. Access tokens issued to it may send
// to that project only.
func (f *FCM) AddServiceAccount(clientEmail, keyID string, pub *rsa.PublicKey, projectID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accounts[clientEmail]
	if a == nil {
		a = &fcmAccount{keys: map[string]*rsa.PublicKey{}}
		f.accounts[clientEmail] = a
	}
	a.projectID = projectID
	a.keys[keyID] = pub
}

// RevokeAccessTokens invalidates every access token issued so far, as
// when an account or its key is disabled: sends with them get 401.
func (f *FCM) RevokeAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.grants)
}

// App builds the real firebase app and messaging client for a service
// account JSON, pointed at the fake: firebase.NewApp with the JSON's
// project_id, option.WithCredentialsJSON and option.WithEndpoint, then
// app.Messaging. Tokens are fetched from the JSON's token_uri.
func (f *FCM) App(ctx context.Context, saJSON []byte) (*messaging.Client, error) {
	var sa struct {
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		return nil, fmt.Errorf("pushtest: service account JSON: %w", err)
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: sa.ProjectID},
		option.WithCredentialsJSON(saJSON), option.WithEndpoint(f.Endpoint()))
	if err != nil {
		return nil, fmt.Errorf("pushtest: firebase app: %w", err)
	}
	c, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("pushtest: firebase messaging: %w", err)
	}
	return c, nil
}

// Received returns a copy of the messages accepted so far, in order,
// validate_only ones included.
func (f *FCM) Received() []FCMMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FCMMessage(nil), f.msgs...)
}

// Count is the number of messages accepted for delivery to a token (not
// counting validate_only ones).
func (f *FCM) Count(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[token]
}

// TokenRequests is the number of requests to the token endpoint, granted
// or not.
func (f *FCM) TokenRequests() int { return int(f.tokenReqs.Load()) }

func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	f.tokenReqs.Add(1)
	fail := func(code, desc string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", "Invalid request body.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != FCMGrantType {
		fail("unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		fail("invalid_request", "Missing required parameter: assertion")
		return
	}
	j, err := parseJWS(assertion)
	if err != nil {
		fail("invalid_grant", "Invalid JWT Signature.")
		return
	}
	var c struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
	}
	if err := json.Unmarshal(j.claims, &c); err != nil {
		fail("invalid_grant", "Invalid JWT Signature.")
		return
	}
	f.mu.Lock()
	acct := f.accounts[c.Iss]
	var pubs []*rsa.PublicKey
	var projectID string
	if acct != nil {
		projectID = acct.projectID
		if j.kid != "" {
			pubs = append(pubs, acct.keys[j.kid])
		} else {
			pubs = slices.Collect(maps.Values(acct.keys))
		}
	}
	f.mu.Unlock()
	if acct == nil {
		fail("invalid_grant", "Invalid grant: account not found")
		return
	}
	if !slices.ContainsFunc(pubs, j.verifyRS256) {
		fail("invalid_grant", "Invalid JWT Signature.")
		return
	}
	if c.Aud != f.TokenURL() {
		fail("invalid_grant", "Invalid JWT: Failed audience check. The expected audience is "+f.TokenURL()+".")
		return
	}
	now := time.Now()
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	if c.Iat == 0 || c.Exp == 0 || exp.Sub(iat) > time.Hour || exp.Before(now) || iat.After(now.Add(5*time.Minute)) {
		fail("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	}
	scopes := strings.Fields(c.Scope)
	if len(scopes) == 0 {
		fail("invalid_scope", "Empty or missing scope not allowed.")
		return
	}
	var b [32]byte
	rand.Read(b[:])
	access := "ya29.c." + hex.EncodeToString(b[:])
	f.mu.Lock()
	f.grants[access] = fcmGrant{email: c.Iss, projectID: projectID, scopes: scopes, expires: now.Add(FCMAccessTokenLifetime)}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"expires_in":   int(FCMAccessTokenLifetime / time.Second),
		"token_type":   "Bearer",
	})
}

const (
	fcmMissingCredentials = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	fcmInvalidCredentials = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	fcmInvalidToken       = "The registration token is not a valid FCM registration token"
)

// fcmMaxRequest is the largest request body Google's front end takes.
const fcmMaxRequest = 1 << 20

var (
	fcmTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_:\-]+$`)
	fcmTopicPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.~%]+$`)
	fcmTTLPattern   = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)
)

func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	scheme, access, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || access == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		writeGoogleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", fcmMissingCredentials)
		return
	}
	f.mu.Lock()
	g, ok := f.grants[access]
	f.mu.Unlock()
	if !ok || time.Now().After(g.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeGoogleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", fcmInvalidCredentials)
		return
	}
	if !slices.Contains(g.scopes, FCMScope) && !slices.Contains(g.scopes, fcmCloudPlatformScope) {
		writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
		return
	}
	if g.projectID != project {
		writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fcmMaxRequest))
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Request payload size exceeds the limit: %d bytes.", fcmMaxRequest))
		return
	} else if err != nil {
		drop(r, Answer{Drop: true}) // the client went away mid-body
	}
	m, msg, badToken := decodeFCMRequest(body)
	if badToken {
		writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fcmInvalidToken, fcmDetails("INVALID_ARGUMENT")...)
		return
	}
	if msg != "" {
		writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg, badRequest("", msg))
		return
	}
	m.Project = project
	key := m.Token
	switch {
	case m.Topic != "":
		key = "/topics/" + m.Topic
	case m.Condition != "":
		key = m.Condition
	}

	a := f.answer(key)
	if a.Drop || a.CloseConn {
		drop(r, a)
	}
	if !a.ok() {
		writeFCMError(w, a)
		return
	}
	m.At = time.Now()
	if m.ValidateOnly {
		m.Name = "projects/" + project + "/messages/fake_message_id"
	} else {
		var b [8]byte
		rand.Read(b[:])
		m.Name = fmt.Sprintf("projects/%s/messages/0:%d%%%x", project, m.At.UnixMilli(), b)
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	if !m.ValidateOnly {
		f.counts[key]++
	}
	f.mu.Unlock()
	a.setRetryAfter(w.Header())
	writeJSON(w, http.StatusOK, map[string]string{"name": m.Name})
}

// decodeFCMRequest decodes a send request as Google's JSON mapping does.
// It returns the message, or Google's message for what is wrong with it;
// badToken says the registration token is malformed.
func decodeFCMRequest(body []byte) (m FCMMessage, problem string, badToken bool) {
	if !json.Valid(body) {
		return m, "Invalid JSON payload received. Unexpected token.", false
	}
	var rawMsg, notif, android, apns, fcmOptions, webpush json.RawMessage
	if p := decodeObject(body, "", map[string]any{"message": &rawMsg, "validate_only": &m.ValidateOnly}); p != "" {
		return m, p, false
	}
	if rawMsg == nil {
		return m, "Request contains an invalid argument.", false
	}
	m.Message = append(json.RawMessage(nil), rawMsg...)
	var name string
	if p := decodeObject(rawMsg, "message", map[string]any{
		"name": &name, "token": &m.Token, "topic": &m.Topic, "condition": &m.Condition,
		"data": &m.Data, "notification": &notif, "android": &android, "webpush": &webpush,
		"apns": &apns, "fcm_options": &fcmOptions,
	}); p != "" {
		return m, p, false
	}
	if notif != nil {
		n := &m.Notification
		if p := decodeObject(notif, "message.notification", map[string]any{"title": &n.Title, "body": &n.Body, "image": &n.Image}); p != "" {
			return m, p, false
		}
	}
	if android != nil {
		var ttl, opts json.RawMessage
		var directBoot, bandwidth, satellite bool
		var pkg string
		ad := &m.Android
		if p := decodeObject(android, "message.android", map[string]any{
			"collapse_key": &ad.CollapseKey, "priority": &ad.Priority, "ttl": &ttl,
			"restricted_package_name": &pkg, "data": &ad.Data, "notification": &ad.Notification,
			"fcm_options": &opts, "direct_boot_ok": &directBoot,
			"bandwidth_constrained_ok": &bandwidth, "restricted_satellite_ok": &satellite,
		}); p != "" {
			return m, p, false
		}
		switch strings.ToLower(ad.Priority) {
		case "", "normal", "high":
		default:
			return m, fmt.Sprintf("Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), %q", ad.Priority), false
		}
		if ttl != nil {
			var s string
			if json.Unmarshal(ttl, &s) != nil || !fcmTTLPattern.MatchString(s) {
				return m, "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format; duration must end with 's'", false
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return m, "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format", false
			}
			ad.TTL = &d
		}
	}
	if apns != nil {
		var opts json.RawMessage
		var liveActivity string
		if p := decodeObject(apns, "message.apns", map[string]any{
			"headers": &m.APNs.Headers, "payload": &m.APNs.Payload,
			"fcm_options": &opts, "live_activity_token": &liveActivity,
		}); p != "" {
			return m, p, false
		}
		if pl := bytes.TrimSpace(m.APNs.Payload); len(pl) > 0 && pl[0] != '{' {
			return m, "Invalid value at 'message.apns.payload' (type.googleapis.com/google.protobuf.Struct)", false
		}
	}
	if fcmOptions != nil {
		var label string
		if p := decodeObject(fcmOptions, "message.fcm_options", map[string]any{"analytics_label": &label}); p != "" {
			return m, p, false
		}
	}
	targets := 0
	for _, s := range []string{m.Token, m.Topic, m.Condition} {
		if s != "" {
			targets++
		}
	}
	switch {
	case targets == 0:
		return m, "Recipient of the message is not set.", false
	case targets > 1:
		return m, "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set more than one of token, topic and condition.", false
	case m.Token != "" && !fcmTokenPattern.MatchString(m.Token):
		return m, "", true
	case m.Topic != "" && !fcmTopicPattern.MatchString(m.Topic):
		return m, "Invalid topic name " + m.Topic, false
	}
	for _, data := range []map[string]string{m.Data, m.Android.Data} {
		for k := range data {
			lk := strings.ToLower(k)
			if lk == "from" || lk == "message_type" || strings.HasPrefix(lk, "google") || strings.HasPrefix(lk, "gcm") {
				return m, "Invalid data payload key: " + k, false
			}
		}
	}
	return m, "", false
}

// decodeObject decodes the JSON object raw into the destinations of dst,
// keyed by proto field name. Like Google's JSON mapping it also takes the
// lowerCamelCase name, and refuses any other. It returns Google's message
// for what it refuses, or "".
func decodeObject(raw []byte, path string, dst map[string]any) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return fmt.Sprintf("Invalid value at '%s', expected an object: %s", path, raw)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := snakeCase(k)
		d, ok := dst[name]
		if !ok {
			if path == "" {
				return fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", k)
			}
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, path)
		}
		v := bytes.TrimSpace(m[k])
		if string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, d); err != nil {
			full := name
			if path != "" {
				full = path + "." + name
			}
			return fmt.Sprintf("Invalid value at '%s', %s", full, v)
		}
	}
	return ""
}

// snakeCase turns a lowerCamelCase JSON name into its proto field name.
func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fcmErrorInfo is what FCM answers with an errorCode.
type fcmErrorInfo struct {
	code    int
	status  string
	message string
}

var fcmErrors = map[string]fcmErrorInfo{
	"INVALID_ARGUMENT":       {http.StatusBadRequest, "INVALID_ARGUMENT", fcmInvalidToken},
	"THIRD_PARTY_AUTH_ERROR": {http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"},
	"SENDER_ID_MISMATCH":     {http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch"},
	"UNREGISTERED":           {http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."},
	"QUOTA_EXCEEDED":         {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'."},
	"INTERNAL":               {http.StatusInternalServerError, "INTERNAL", "Internal error encountered."},
	"UNAVAILABLE":            {http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable."},
}

// fcmStatusReason is the errorCode the fake gives a scripted status alone.
var fcmStatusReason = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "THIRD_PARTY_AUTH_ERROR",
	http.StatusForbidden:           "SENDER_ID_MISMATCH",
	http.StatusNotFound:            "UNREGISTERED",
	http.StatusTooManyRequests:     "QUOTA_EXCEEDED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
}

// googleStatus is the canonical status Google sends with an HTTP code.
var googleStatus = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ABORTED",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusNotImplemented:      "UNIMPLEMENTED",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
	http.StatusGatewayTimeout:      "DEADLINE_EXCEEDED",
}

func writeFCMError(w http.ResponseWriter, a Answer) {
	reason := a.Reason
	if reason == "" {
		reason = fcmStatusReason[a.Status]
	}
	info, known := fcmErrors[reason]
	code := a.Status
	if code == 0 {
		code = info.code
		if !known {
			code = http.StatusBadRequest
		}
	}
	status, message := info.status, info.message
	if !known || info.code != code {
		status = googleStatus[code]
		if status == "" {
			status = "UNKNOWN"
		}
		message = http.StatusText(code)
	}
	var details []any
	if reason != "" {
		details = fcmDetails(reason)
	}
	if code == http.StatusTooManyRequests && a.RetryAfter <= 0 {
		a.RetryAfter = randomRetryAfter
	}
	a.setRetryAfter(w.Header())
	writeGoogleError(w, code, status, message, details...)
}

// fcmDetails is the details list FCM sends with an errorCode.
func fcmDetails(errorCode string) []any {
	d := []any{map[string]string{"@type": fcmErrorType, "errorCode": errorCode}}
	if errorCode == "INVALID_ARGUMENT" {
		d = append(d, badRequest("message.token", fcmInvalidToken))
	}
	return d
}

func badRequest(field, description string) any {
	v := map[string]string{"description": description}
	if field != "" {
		v["field"] = field
	}
	return map[string]any{
		"@type":           "type.googleapis.com/google.rpc.BadRequest",
		"fieldViolations": []any{v},
	}
}

func writeGoogleError(w http.ResponseWriter, code int, status, message string, details ...any) {
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []any  `json:"details,omitempty"`
	}
	writeJSON(w, code, map[string]body{"error": {Code: code, Message: message, Status: status, Details: details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the fake's own values get here
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
