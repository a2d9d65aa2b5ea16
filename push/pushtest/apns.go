package pushtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2/hpack"
)

// What the fake, like Apple, accepts.
const (
	// APNsMaxPayload is the largest payload of a push, in bytes (Apple:
	// 4 KB; 413 PayloadTooLarge beyond).
	APNsMaxPayload = 4096
	// APNsMaxVoIPPayload is the largest payload of a voip push.
	APNsMaxVoIPPayload = 5120
	// APNsTokenLifetime is how old a provider token's iat may be before
	// Apple answers 403 ExpiredProviderToken.
	APNsTokenLifetime = time.Hour
	// APNsMaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS
	// the fake advertises, the value Apple's servers advertise.
	APNsMaxConcurrentStreams = 1000
)

// APNs is a fake of Apple's HTTP/2 provider API (api.push.apple.com) for
// token-based (JWT) authentication. It is safe for concurrent use.
//
// What it checks, in this order, with Apple's answers: POST (405
// MethodNotAllowed); path /3/device/<token> (404 BadPath, 400
// MissingDeviceToken); the authorization header "bearer <JWT>", an ES256
// JWT whose kid names a key added with AddKey, whose iss is that key's
// team and whose signature verifies (403 MissingProviderToken,
// InvalidProviderToken) and whose iat is less than an hour old (403
// ExpiredProviderToken); apns-* headers not repeated (400
// DuplicateHeaders); apns-topic present (400 MissingTopic); apns-id, if
// present, a UUID (400 BadMessageId); apns-push-type, if present, one of
// Apple's types (400 InvalidPushType); apns-priority, if present, 1, 5 or
// 10 (400 BadPriority); apns-expiration, if present, a UNIX time in
// seconds (400 BadExpirationDate); apns-collapse-id at most 64 bytes (400
// BadCollapseId); the device token even-length hex (400 BadDeviceToken);
// the payload at most 4096 bytes, 5120 for voip (413 PayloadTooLarge);
// the payload a JSON object with an "aps" object (400 PayloadEmpty;
// Apple documents no reason for a malformed payload, and the fake would
// rather fail loudly than accept it).
//
// A request that passes gets its Answer (see Script). Every answer
// carries an apns-id header: the request's, or a new UUID. Success is 200
// with an empty body (and an apns-unique-id header, as in Apple's
// development environment); an error is {"reason":"..."}, and a 410 adds
// "timestamp" in milliseconds since the epoch.
type APNs struct {
	t   testing.TB
	srv *h2Server
	// forget and accepted: see KeepPushes and Accepted.
	forget   atomic.Bool
	accepted atomic.Int64
	*responder

	mu       sync.Mutex
	keys     map[string]apnsKey // by key ID
	pushes   []APNsPush
	counts   map[string]int
	jwts     map[string]struct{}
	verified map[string]verifiedJWT // provider tokens already checked
}

type apnsKey struct {
	teamID string
	pub    *ecdsa.PublicKey
}

// APNsPush is one push the APNs fake accepted.
type APNsPush struct {
	Token      string
	Topic      string
	PushType   string      // apns-push-type; "" when absent
	Priority   int         // apns-priority; 0 when absent (Apple then uses 10)
	Expiration time.Time   // apns-expiration; zero when absent, the epoch for "0"
	CollapseID string      // apns-collapse-id
	APNsID     string      // the apns-id answered: the request's, or the one the fake made
	Payload    []byte      // the body as sent
	JWT        string      // the provider token
	KeyID      string      // the JWT's kid
	TeamID     string      // the JWT's iss
	At         time.Time   // when the fake accepted it
	Header     http.Header // all request headers
}

// NewAPNs starts an APNs fake on 127.0.0.1 (HTTP/2 over TLS) and closes
// it when the test ends. Register keys with AddKey before pushing.
func NewAPNs(t testing.TB) *APNs {
	t.Helper()
	f := &APNs{
		t:         t,
		responder: newResponder(),
		keys:      map[string]apnsKey{},
		counts:    map[string]int{},
		jwts:      map[string]struct{}{},
		verified:  map[string]verifiedJWT{},
	}
	srv, err := newH2Server(f.serve)
	if err != nil {
		t.Fatalf("pushtest: APNs: %v", err)
	}
	f.srv = srv
	t.Cleanup(srv.Close)
	return f
}

// Close shuts the fake down before the test ends (it is also shut when
// the test ends): a benchmark that starts one per iteration frees each.
func (f *APNs) Close() { f.srv.Close() }

// URL is the base URL of the fake, https://127.0.0.1:port; it is what
// apns2.Client.Host should be.
func (f *APNs) URL() string { return f.srv.URL() }

// Certificate is the fake's self-signed TLS certificate.
func (f *APNs) Certificate() *x509.Certificate { return f.srv.cert }

// CertPool is a pool holding only the fake's certificate, for a client's
// tls.Config.RootCAs.
func (f *APNs) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.srv.cert)
	return p
}

// Client returns the real apns2 client for tok, pointed at the fake. Its
// transport is its own net/http Transport, HTTP/2 only, trusting the
// fake's certificate, with HTTP/2 health pings after 15 s without a frame
// (apns2's ReadIdleTimeout); srv.Client() would hide connection-reuse
// bugs. Its idle connections are closed when the test ends.
//
// It keeps one connection and multiplexes every push over it, even a
// burst on a new client: MaxConnsPerHost 1 makes requests that find no
// connection wait for the one being dialled, and
// StrictMaxConcurrentRequests makes them wait for a free stream rather
// than dial another connection. Without these the standard transport
// dials a connection per waiting request: a burst of 500 pushes on a new
// client opens several hundred connections, which Apple treats as a
// denial-of-service attack.
func (f *APNs) Client(tok *token.Token) *apns2.Client {
	var h2 http.Protocols
	h2.SetHTTP2(true) // APNs speaks only HTTP/2
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: f.CertPool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		// APNs answers are a few bytes of JSON: asking for gzip would
		// only add a header to every push.
		DisableCompression: true,
		Protocols:          &h2,
		MaxConnsPerHost:    1,
		HTTP2: &http.HTTP2Config{
			StrictMaxConcurrentRequests: true,
			SendPingTimeout:             apns2.ReadIdleTimeout,
			PingTimeout:                 15 * time.Second,
		},
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	c := apns2.NewTokenClient(tok)
	c.Host = f.URL()
	c.HTTPClient = &http.Client{Transport: tr, Timeout: apns2.HTTPClientTimeout}
	return c
}

// AddKey registers the public half of a team's signing key (the .p8 key
// Apple issued as keyID). Tokens signed by it with iss teamID are then
// accepted; adding a key ID again replaces it.
func (f *APNs) AddKey(teamID, keyID string, pub *ecdsa.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[keyID] = apnsKey{teamID: teamID, pub: pub}
}

// RemoveKey forgets a key, as when it is revoked in the developer
// account: tokens it signed get 403 InvalidProviderToken.
func (f *APNs) RemoveKey(keyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, keyID)
}

// Received returns a copy of the pushes accepted so far, in order.
func (f *APNs) Received() []APNsPush {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]APNsPush(nil), f.pushes...)
}

// KeepPushes(false) stops the fake from keeping each push it accepts
// (what Received and Count report); Accepted still counts them. A
// throughput benchmark uses it: Apple keeps its records on its own
// machines, and a fake that kept every push would have the garbage
// collector of the process under test mark them all, again and again.
func (f *APNs) KeepPushes(keep bool) { f.forget.Store(!keep) }

// Accepted is the number of pushes the fake accepted (answered 200).
func (f *APNs) Accepted() int { return int(f.accepted.Load()) }

// Count is the number of pushes accepted for a device token.
func (f *APNs) Count(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[token]
}

// Connections is the number of TCP connections clients have opened to
// the fake. A sender that reuses its connection opens one.
func (f *APNs) Connections() int { return int(f.srv.accepts.Load()) }

// JWTs is the number of distinct provider tokens presented, valid or
// not. Apple expects a provider to reuse one token for 20 to 60 minutes.
func (f *APNs) JWTs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jwts)
}

// apnsPushTypes are the apns-push-type values Apple accepts.
var apnsPushTypes = map[string]bool{
	"alert": true, "background": true, "location": true, "voip": true,
	"complication": true, "fileprovider": true, "mdm": true,
	"liveactivity": true, "pushtotalk": true, "widgets": true,
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, as
// Apple requires of apns-id.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// serve answers one request as Apple would.
func (f *APNs) serve(r *h2Request) h2Reply {
	apnsID := r.header.Get("apns-id")
	answerID := apnsID
	if apnsID == "" || !isUUID(apnsID) {
		answerID = newUUID()
	}
	fail := func(status int, reason string) h2Reply {
		return apnsError(answerID, Answer{Status: status, Reason: reason})
	}

	if r.method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, apns2.ReasonMethodNotAllowed)
	}
	deviceToken, ok := strings.CutPrefix(r.path, "/3/device/")
	if !ok || strings.Contains(deviceToken, "/") {
		return fail(http.StatusNotFound, apns2.ReasonBadPath)
	}
	if deviceToken == "" {
		return fail(http.StatusBadRequest, apns2.ReasonMissingDeviceToken)
	}
	jwt, key, teamID, reason := f.authorize(r.header)
	if reason != "" {
		return fail(http.StatusForbidden, reason)
	}
	for k, v := range r.header {
		if len(v) > 1 && len(k) >= 5 && strings.EqualFold(k[:5], "apns-") {
			return fail(http.StatusBadRequest, apns2.ReasonDuplicateHeaders)
		}
	}
	p := APNsPush{
		Token:      deviceToken,
		Topic:      r.header.Get("apns-topic"),
		PushType:   r.header.Get("apns-push-type"),
		CollapseID: r.header.Get("apns-collapse-id"),
		JWT:        jwt,
		KeyID:      key,
		TeamID:     teamID,
		// The server makes a new map per request and never touches it
		// after the handler: kept as is, not copied per push.
		Header: r.header,
	}
	if p.Topic == "" {
		return fail(http.StatusBadRequest, apns2.ReasonMissingTopic)
	}
	if apnsID != "" && !isUUID(apnsID) {
		return fail(http.StatusBadRequest, apns2.ReasonBadMessageID)
	}
	if p.PushType != "" && !apnsPushTypes[p.PushType] {
		return fail(http.StatusBadRequest, apns2.ReasonInvalidPushType)
	}
	if v := r.header.Get("apns-priority"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 1 && n != 5 && n != 10) {
			return fail(http.StatusBadRequest, apns2.ReasonBadPriority)
		}
		p.Priority = n
	}
	if v := r.header.Get("apns-expiration"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fail(http.StatusBadRequest, apns2.ReasonBadExpirationDate)
		}
		p.Expiration = time.Unix(n, 0)
	}
	if len(p.CollapseID) > 64 {
		return fail(http.StatusBadRequest, apns2.ReasonBadCollapseID)
	}
	if len(deviceToken)%2 != 0 || !isHex(deviceToken) || len(deviceToken) > 200 {
		return fail(http.StatusBadRequest, apns2.ReasonBadDeviceToken)
	}
	limit := APNsMaxPayload
	if p.PushType == "voip" {
		limit = APNsMaxVoIPPayload
	}
	body := r.body
	if r.bodyLen > limit {
		return fail(http.StatusRequestEntityTooLarge, apns2.ReasonPayloadTooLarge)
	}
	if !hasAPS(body) {
		return fail(http.StatusBadRequest, apns2.ReasonPayloadEmpty)
	}
	p.Payload = body

	a := f.answer(deviceToken)
	if a.Drop || a.CloseConn {
		return h2Reply{drop: a.Drop, closeConn: a.CloseConn}
	}
	if !a.ok() {
		return apnsError(answerID, a)
	}
	p.APNsID = answerID
	p.At = time.Now()
	f.mu.Lock()
	f.accepted.Add(1)
	if !f.forget.Load() {
		f.pushes = append(f.pushes, p)
		f.counts[deviceToken]++
	}
	f.mu.Unlock()
	rep := h2Reply{status: http.StatusOK, header: []hpack.HeaderField{
		// Ids differ on every answer: sent as never-indexed literals, so
		// they do not churn the HPACK tables of both ends.
		{Name: "apns-id", Value: answerID, Sensitive: true},
		{Name: "apns-unique-id", Value: strings.ToLower(newUUID()), Sensitive: true},
	}}
	return rep.withRetryAfter(a)
}

// authorize checks the provider token as Apple does and returns it, its
// key ID and team, or the reason it is refused.
func (f *APNs) authorize(h http.Header) (jwt, keyID, teamID, reason string) {
	v := h.Get("authorization")
	if v == "" {
		return "", "", "", apns2.ReasonMissingProviderToken
	}
	scheme, jwt, _ := strings.Cut(v, " ")
	jwt = strings.TrimSpace(jwt)
	if !strings.EqualFold(scheme, "bearer") {
		return "", "", "", apns2.ReasonInvalidProviderToken
	}
	if jwt == "" {
		return "", "", "", apns2.ReasonMissingProviderToken
	}
	f.mu.Lock()
	f.jwts[jwt] = struct{}{}
	f.mu.Unlock()

	// Apple verifies a provider token once and trusts it for its
	// lifetime; so does the fake, or ES256 verification (~100 µs) would
	// dominate every throughput measurement. A removed key still fails.
	f.mu.Lock()
	cached, seen := f.verified[jwt]
	if seen {
		if k, ok := f.keys[cached.kid]; !ok || k.pub != cached.pub {
			seen = false
		}
	}
	f.mu.Unlock()
	if seen {
		if time.Since(cached.iat) > APNsTokenLifetime {
			return jwt, cached.kid, cached.iss, apns2.ReasonExpiredProviderToken
		}
		return jwt, cached.kid, cached.iss, ""
	}
	j, err := parseJWS(jwt)
	if err != nil {
		return jwt, "", "", apns2.ReasonInvalidProviderToken
	}
	f.mu.Lock()
	key, ok := f.keys[j.kid]
	f.mu.Unlock()
	if !ok || !j.verifyES256(key.pub) {
		return jwt, j.kid, "", apns2.ReasonInvalidProviderToken
	}
	var claims struct {
		Iss string      `json:"iss"`
		Iat json.Number `json:"iat"`
	}
	d := json.NewDecoder(bytes.NewReader(j.claims))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil || claims.Iss != key.teamID {
		return jwt, j.kid, claims.Iss, apns2.ReasonInvalidProviderToken
	}
	iat, err := claims.Iat.Float64()
	if err != nil {
		return jwt, j.kid, claims.Iss, apns2.ReasonInvalidProviderToken
	}
	if time.Since(time.Unix(int64(iat), 0)) > APNsTokenLifetime {
		return jwt, j.kid, claims.Iss, apns2.ReasonExpiredProviderToken
	}
	f.mu.Lock()
	f.verified[jwt] = verifiedJWT{kid: j.kid, iss: claims.Iss, iat: time.Unix(int64(iat), 0), pub: key.pub}
	f.mu.Unlock()
	return jwt, j.kid, claims.Iss, ""
}

// verifiedJWT is a provider token that passed every check, and the key
// it was checked against.
type verifiedJWT struct {
	kid, iss string
	iat      time.Time
	pub      *ecdsa.PublicKey
}

// apnsReasonStatus is the status Apple sends with each reason.
var apnsReasonStatus = map[string]int{
	apns2.ReasonBadCollapseID:               http.StatusBadRequest,
	apns2.ReasonBadDeviceToken:              http.StatusBadRequest,
	apns2.ReasonBadExpirationDate:           http.StatusBadRequest,
	apns2.ReasonBadMessageID:                http.StatusBadRequest,
	apns2.ReasonBadPriority:                 http.StatusBadRequest,
	apns2.ReasonBadTopic:                    http.StatusBadRequest,
	apns2.ReasonDeviceTokenNotForTopic:      http.StatusBadRequest,
	apns2.ReasonDuplicateHeaders:            http.StatusBadRequest,
	apns2.ReasonIdleTimeout:                 http.StatusBadRequest,
	apns2.ReasonInvalidPushType:             http.StatusBadRequest,
	apns2.ReasonMissingDeviceToken:          http.StatusBadRequest,
	apns2.ReasonMissingTopic:                http.StatusBadRequest,
	apns2.ReasonPayloadEmpty:                http.StatusBadRequest,
	apns2.ReasonTopicDisallowed:             http.StatusBadRequest,
	apns2.ReasonBadCertificate:              http.StatusForbidden,
	apns2.ReasonBadCertificateEnvironment:   http.StatusForbidden,
	apns2.ReasonExpiredProviderToken:        http.StatusForbidden,
	apns2.ReasonForbidden:                   http.StatusForbidden,
	apns2.ReasonInvalidProviderToken:        http.StatusForbidden,
	apns2.ReasonMissingProviderToken:        http.StatusForbidden,
	apns2.ReasonBadPath:                     http.StatusNotFound,
	apns2.ReasonMethodNotAllowed:            http.StatusMethodNotAllowed,
	apns2.ReasonExpiredToken:                http.StatusGone,
	apns2.ReasonUnregistered:                http.StatusGone,
	apns2.ReasonPayloadTooLarge:             http.StatusRequestEntityTooLarge,
	apns2.ReasonTooManyProviderTokenUpdates: http.StatusTooManyRequests,
	apns2.ReasonTooManyRequests:             http.StatusTooManyRequests,
	apns2.ReasonInternalServerError:         http.StatusInternalServerError,
	apns2.ReasonServiceUnavailable:          http.StatusServiceUnavailable,
	apns2.ReasonShutdown:                    http.StatusServiceUnavailable,
}

// apnsStatusReason is the reason the fake gives a scripted status alone.
var apnsStatusReason = map[int]string{
	http.StatusBadRequest:            apns2.ReasonBadDeviceToken,
	http.StatusForbidden:             apns2.ReasonInvalidProviderToken,
	http.StatusNotFound:              apns2.ReasonBadPath,
	http.StatusMethodNotAllowed:      apns2.ReasonMethodNotAllowed,
	http.StatusGone:                  apns2.ReasonUnregistered,
	http.StatusRequestEntityTooLarge: apns2.ReasonPayloadTooLarge,
	http.StatusTooManyRequests:       apns2.ReasonTooManyRequests,
	http.StatusInternalServerError:   apns2.ReasonInternalServerError,
	http.StatusServiceUnavailable:    apns2.ReasonServiceUnavailable,
}

// apnsError is Apple's answer to a refused request: the status, the
// apns-id and {"reason": ...}, with the timestamp of a 410.
func apnsError(apnsID string, a Answer) h2Reply {
	status, reason := a.Status, a.Reason
	if status == 0 {
		status = apnsReasonStatus[reason]
		if status == 0 {
			status = http.StatusBadRequest
		}
	}
	if reason == "" {
		reason = apnsStatusReason[status]
	}
	body := struct {
		Reason    string `json:"reason"`
		Timestamp *int64 `json:"timestamp,omitempty"`
	}{Reason: reason}
	if status == http.StatusGone {
		ts := a.Timestamp
		if ts.IsZero() {
			ts = time.Now()
		}
		ms := ts.UnixMilli()
		body.Timestamp = &ms
	}
	b, _ := json.Marshal(body)
	rep := h2Reply{status: status, body: b, header: []hpack.HeaderField{
		{Name: "apns-id", Value: apnsID, Sensitive: true},
		{Name: "content-type", Value: "application/json; charset=utf-8"},
	}}
	return rep.withRetryAfter(a)
}

// withRetryAfter adds a's Retry-After header, if any.
func (rep h2Reply) withRetryAfter(a Answer) h2Reply {
	if v := a.retryAfter(); v != "" {
		rep.header = append(rep.header, hpack.HeaderField{Name: "retry-after", Value: v})
	}
	return rep
}

// hasAPS reports whether body is one JSON object (nothing before or
// after it) with an "aps" member that is an object.
func hasAPS(body []byte) bool {
	j := jsonCheckers.Get().(*jsonChecker)
	defer jsonCheckers.Put(j)
	j.r.Reset(body)
	j.d.Reset(&j.r)
	d := &j.d
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	found := false
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return false
		}
		if name.String() == "aps" && d.PeekKind() == '{' {
			found = true
		}
		if err := d.SkipValue(); err != nil {
			return false
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	_, err := d.ReadToken()
	return found && errors.Is(err, io.EOF)
}

// jsonChecker is a reusable streaming decoder: one per request would be
// most of what checking a payload allocates.
type jsonChecker struct {
	r bytes.Reader
	d jsontext.Decoder
}

var jsonCheckers = sync.Pool{New: func() any { return new(jsonChecker) }}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// newUUID returns a random (version 4) UUID in upper case, as Apple
// writes them.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const digits = "0123456789ABCDEF"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
	return string(out[:])
}
