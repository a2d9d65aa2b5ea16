package pushtest

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Answer is what a fake says to one request that passed its checks. The
// zero Answer is success (200).
type Answer struct {
	// Status is the HTTP status. Zero means 200, or, when Reason is set,
	// the status the provider sends with that reason.
	Status int
	// Reason is the provider's error code: an APNs reason such as
	// "Unregistered", or an FCM errorCode such as "UNREGISTERED". Empty
	// means the reason that goes with Status (APNs 410 is
	// "Unregistered", FCM 404 is "UNREGISTERED", and so on).
	Reason string
	// RetryAfter, when positive, is sent as a Retry-After header, in whole
	// seconds rounded up.
	RetryAfter time.Duration
	// Timestamp is the "timestamp" of an APNs 410: the last time Apple
	// knew the token was invalid. Zero means now. FCM ignores it.
	Timestamp time.Time
	// Drop ends the request without an answer: on HTTP/2 (APNs) the stream
	// is reset, on HTTP/1.1 (FCM) the connection is closed. The client
	// gets a transport error and cannot know whether the push went out.
	Drop bool
	// CloseConn closes the TCP connection the request came on, failing
	// every request in flight on it, as when a provider or a middlebox
	// kills a connection. The client's next request dials anew.
	CloseConn bool
}

// ok reports whether a is a success: status 200, or no status and no
// reason.
func (a Answer) ok() bool {
	return !a.Drop && !a.CloseConn && (a.Status == http.StatusOK || a.Status == 0 && a.Reason == "")
}

// retryAfter is a's Retry-After value, whole seconds rounded up, or ""
// when it has none.
func (a Answer) retryAfter() string {
	if a.RetryAfter <= 0 {
		return ""
	}
	return strconv.FormatInt(int64((a.RetryAfter+time.Second-1)/time.Second), 10)
}

// setRetryAfter writes the Retry-After header of a, if any.
func (a Answer) setRetryAfter(h http.Header) {
	if v := a.retryAfter(); v != "" {
		h.Set("Retry-After", v)
	}
}

// randomRetryAfter is the Retry-After of the 429s that FailRandomly makes.
const randomRetryAfter = time.Second

// responder decides the answer to each request that passed the checks:
// the token's script, else a random failure, else the default.
type responder struct {
	mu       sync.Mutex
	scripts  map[string]*script
	def      Answer
	rate     float64
	statuses []int
	rng      *rand.Rand
	attempts map[string]int
}

type script struct {
	answers []Answer
	next    int
}

func newResponder() *responder {
	return &responder{scripts: map[string]*script{}, attempts: map[string]int{}}
}

// Script sets the answers to the next requests for a token that pass the
// fake's checks: the first answer to the first request, and so on; the
// last answer repeats. Script with no answers removes the token's script.
// (FCM scripts a topic message under "/topics/" plus the topic, a
// condition message under the condition.)
func (r *responder) Script(token string, answers ...Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(answers) == 0 {
		delete(r.scripts, token)
		return
	}
	r.scripts[token] = &script{answers: append([]Answer(nil), answers...)}
}

// SetDefault sets the answer to tokens without a script; it starts as
// success.
func (r *responder) SetDefault(a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def = a
}

// FailRandomly makes the fake answer a request for a token without a
// script, with probability rate, with one of statuses picked at random
// (429, 500 and 503 when statuses is empty) and the provider's reason for
// it; a 429 has Retry-After: 1. The same seed gives the same answers to
// the same sequence of requests. A rate of 0 turns it off. (The firebase
// client sleeps before retrying a 503.)
func (r *responder) FailRandomly(rate float64, statuses []int, seed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(statuses) == 0 {
		statuses = []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}
	}
	r.rate = rate
	r.statuses = append([]int(nil), statuses...)
	r.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// answer counts an attempt for token and says how to answer it.
func (r *responder) answer(token string) Answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[token]++
	if s, ok := r.scripts[token]; ok {
		a := s.answers[s.next]
		if s.next < len(s.answers)-1 {
			s.next++
		}
		return a
	}
	if r.rate > 0 && r.rng.Float64() < r.rate {
		a := Answer{Status: r.statuses[r.rng.IntN(len(r.statuses))]}
		if a.Status == http.StatusTooManyRequests {
			a.RetryAfter = randomRetryAfter
		}
		return a
	}
	return r.def
}

// Attempts is the number of requests for a token that passed the checks
// and were answered from the script, the default or at random: accepted,
// refused and dropped alike (a client's own retries each count). Attempts
// minus Count is what the client was refused or lost.
func (r *responder) Attempts(token string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[token]
}

// connKey is the context key under which a server's ConnContext hook
// stores the connection a request came on, for Answer.CloseConn.
type connKey struct{}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// drop carries out a Drop or CloseConn answer; it does not return.
func drop(r *http.Request, a Answer) {
	if a.CloseConn {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			c.Close()
		}
	}
	// Abort without an answer: net/http resets the HTTP/2 stream or
	// closes the HTTP/1.1 connection, and logs nothing.
	panic(http.ErrAbortHandler)
}
