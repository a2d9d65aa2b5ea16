package hook

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ClientOptions configures NewClient. The zero value is the production
// setting: public addresses only, 10 s per request, 64 KiB of response.
type ClientOptions struct {
	// AllowPrivate lets deliveries reach loopback, private and link-local
	// addresses: for tests and on-premise receivers
	// (--webhook-allow-private).
	AllowPrivate bool
	// Timeout bounds a whole request, from dialling to the end of the
	// response body, so one slow receiver cannot hold a sender; 0 means
	// 10 s.
	Timeout time.Duration
	// MaxResponseBytes is how much of a response body may be read before
	// the read fails with ErrResponseTooLarge; only the status decides a
	// delivery, and a receiver must not be able to make us buffer
	// gigabytes. 0 means 64 KiB.
	MaxResponseBytes int64
	// Resolver looks up receivers' names; nil means net.DefaultResolver.
	// Whatever it answers, the connect-time check still applies.
	Resolver *net.Resolver
}

// ErrResponseTooLarge is returned by a response body's Read once more
// than ClientOptions.MaxResponseBytes were read.
var ErrResponseTooLarge = errors.New("hook: response body too large")

// NewClient returns the HTTP client deliveries are sent with, safe for
// concurrent use. It refuses, at connect time, any address that is not
// Public (unless AllowPrivate): the check runs on the address the socket is
// about to connect to, after DNS, so a name that passed CheckHost and was
// then repointed at an internal address (DNS rebinding) is still refused.
// For the same reason it uses no proxy (an environment proxy would make
// the connection, and the check would see only the proxy) and follows no
// redirect (a redirect is the receiver's answer, and following it could
// reach an internal host the check never saw); a 3xx comes back as the
// response.
func NewClient(opts ClientOptions) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 10
	}
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  opts.Resolver,
	}
	if !opts.AllowPrivate {
		dialer.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Deliveries go to many hosts, each a few at a time (in order
		// per device): a couple of idle connections per host is reuse
		// enough without holding sockets open to thousands of receivers.
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{
		Transport: limitBody{tr, opts.MaxResponseBytes},
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// refusePrivate is a net.Dialer Control func: it runs after the socket is
// created and before it connects, with the address actually dialled.
// Anything it cannot read as ip:port is refused too. The dialer's error
// already names the address.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !Public(ap.Addr()) {
		return ErrPrivateAddress
	}
	return nil
}

// limitBody caps every response body it passes on.
type limitBody struct {
	rt  http.RoundTripper
	max int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedReader{rc: resp.Body, left: l.max}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport underneath.
func (l limitBody) CloseIdleConnections() {
	if c, ok := l.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// limitedReader fails, rather than stopping quietly as io.LimitReader
// does, so a caller never mistakes a cut body for the whole one.
type limitedReader struct {
	rc   io.ReadCloser
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return 0, ErrResponseTooLarge
	}
	// Read one byte past the limit to tell "exactly the limit" from
	// "more than the limit".
	if int64(len(p)) > r.left+1 {
		p = p[:r.left+1]
	}
	n, err := r.rc.Read(p)
	if int64(n) > r.left {
		n = int(r.left)
		r.left = -1
		return n, ErrResponseTooLarge
	}
	r.left -= int64(n)
	return n, err
}

func (r *limitedReader) Close() error { return r.rc.Close() }
