package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hotzone/hotzone"
)

// SendersOptions configure the real senders. Zero values get defaults.
type SendersOptions struct {
	// APNsURL and FCMURL replace the providers' endpoints (staging,
	// tests); RootCAs, when set, is trusted for both in place of the
	// system pool.
	APNsURL, FCMURL string
	RootCAs         *x509.CertPool
	// APNsRate and FCMRate cap each brand's sends per second; defaults
	// stay well inside what Apple and Google allow one sender.
	APNsRate, FCMRate rate.Limit
	// Quota, when set, makes those rates shared by every node of the
	// backend (see SendQuota) instead of each node's own.
	Quota  SendQuota
	Retry  RetryPolicy
	Now    func() time.Time
	Logger *slog.Logger
	// Bg is the context clients live on (token fetches outlive a send).
	Bg context.Context
}

// Default per-brand send rates: APNs has no published cap but throttles
// bursts per connection; FCM's default quota is 600,000 messages a
// minute per project.
const (
	DefaultAPNsRate rate.Limit = 5000
	DefaultFCMRate  rate.Limit = 5000
)

// Senders picks, per brand and provider, the sender its credentials
// call for: dry-run without credentials, a hold while they are broken,
// and otherwise one long-lived real client, rebuilt only when new
// credentials are uploaded.
type Senders struct {
	creds hotzone.Credentials
	opts  SendersOptions
	tls   *tls.Config
	fcmT  *http.Transport

	mu    sync.Mutex
	cache map[hotzone.Lane]cachedSender
}

type cachedSender struct {
	version int64
	status  string
	sender  Sender
	close   func()
}

// NewSenders builds the registry.
func NewSenders(creds hotzone.Credentials, opts SendersOptions) *Senders {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retry.MaxAttempts == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.APNsRate == 0 {
		opts.APNsRate = DefaultAPNsRate
	}
	if opts.FCMRate == 0 {
		opts.FCMRate = DefaultFCMRate
	}
	if opts.Bg == nil {
		opts.Bg = context.Background()
	}
	tlsConf := &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	fcmT := http.DefaultTransport.(*http.Transport).Clone()
	fcmT.TLSClientConfig = tlsConf.Clone()
	fcmT.MaxIdleConnsPerHost = 100
	return &Senders{creds: creds, opts: opts, tls: tlsConf, fcmT: fcmT, cache: map[hotzone.Lane]cachedSender{}}
}

// For returns the sender of a brand and provider. It is a SenderFor.
func (s *Senders) For(brandID string, p hotzone.Provider) Sender {
	lane := hotzone.Lane{BrandID: brandID, Provider: p}
	c, err := s.creds.Credentials(s.opts.Bg, brandID, p)
	if errors.Is(err, hotzone.ErrNotFound) {
		s.drop(lane)
		return DryRun{Now: s.opts.Now}
	}
	if err != nil {
		// Storage did not answer: hold the notification, do not guess.
		return held{reason: "push credentials could not be read: " + err.Error(), now: s.opts.Now}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, hit := s.cache[lane]; hit && cs.version == c.Version && cs.status == c.Status {
		return cs.sender
	}
	if old, hit := s.cache[lane]; hit && old.close != nil {
		old.close()
	}
	cs := cachedSender{version: c.Version, status: c.Status}
	if c.Status != "ok" {
		reason := "credentials are broken"
		if c.Error != nil {
			reason += ": " + *c.Error
		}
		cs.sender = held{reason: reason, now: s.opts.Now}
	} else {
		sender, closeFn, err := s.build(lane, c)
		if err != nil {
			// Uploaded credentials that cannot even build a client are
			// broken; mark them so the admin sees it in GET /v1/push.
			_ = s.creds.MarkCredentials(s.opts.Bg, brandID, p, c.Version, true, err.Error())
			cs.status = "broken"
			cs.sender = held{reason: "credentials are broken: " + err.Error(), now: s.opts.Now}
		} else {
			cs.sender, cs.close = sender, closeFn
		}
	}
	s.cache[lane] = cs
	return cs.sender
}

func (s *Senders) drop(lane hotzone.Lane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, hit := s.cache[lane]; hit {
		if old.close != nil {
			old.close()
		}
		delete(s.cache, lane)
	}
}

func (s *Senders) build(lane hotzone.Lane, c hotzone.PushCredentials) (Sender, func(), error) {
	var once sync.Once
	broken := func(reason string) {
		once.Do(func() {
			s.opts.Logger.Warn("push credentials rejected", "brand_id", lane.BrandID, "provider", lane.Provider, "reason", reason)
		})
		if err := s.creds.MarkCredentials(s.opts.Bg, lane.BrandID, lane.Provider, c.Version, true, reason); err != nil {
			s.opts.Logger.Error("mark credentials broken", "err", err)
		}
	}
	healthy := func() {}
	switch lane.Provider {
	case hotzone.ProviderAPNs:
		client, err := newAPNsClient(c, s.opts.APNsURL, s.tls)
		if err != nil {
			return nil, nil, err
		}
		closeFn := func() {
			if cc, ok := client.HTTPClient.Transport.(interface{ CloseIdleConnections() }); ok {
				cc.CloseIdleConnections()
			}
		}
		return &apnsSender{client: client, topic: c.Topic, limit: s.limiter(lane, s.opts.APNsRate), pace: float64(s.opts.APNsRate), retry: s.opts.Retry,
			now: s.opts.Now, broken: broken, healthy: healthy}, closeFn, nil
	case hotzone.ProviderFCM:
		if err := s.CheckTokenURI(c.TokenURI); err != nil {
			return nil, nil, err
		}
		client, tokens, err := newFCMClient(s.opts.Bg, c, s.opts.FCMURL, s.fcmT)
		if err != nil {
			return nil, nil, err
		}
		return &fcmSender{client: client, tokens: tokens, limit: s.limiter(lane, s.opts.FCMRate), pace: float64(s.opts.FCMRate), retry: s.opts.Retry,
			now: s.opts.Now, broken: broken, healthy: healthy}, nil, nil
	}
	return DryRun{Now: s.opts.Now}, nil, nil
}

// limiter paces one lane's sends at r: shared by every node when a
// quota is configured, else this node's own.
func (s *Senders) limiter(lane hotzone.Lane, r rate.Limit) waiter {
	if s.opts.Quota != nil {
		return newSharedLimiter(s.opts.Quota, lane, r)
	}
	return rate.NewLimiter(r, int(r))
}

// GoogleTokenURI is where a real service account's assertions go.
const GoogleTokenURI = "https://oauth2.googleapis.com/token"

// CheckTokenURI refuses a service account whose token_uri is neither
// Google's nor on the host of the configured FCM endpoint: the account's
// signed assertion is posted there, so an uploaded file must not be able
// to send it anywhere else.
func (s *Senders) CheckTokenURI(uri string) error {
	if uri == "" || uri == GoogleTokenURI {
		return nil
	}
	if s.opts.FCMURL != "" {
		fu, err1 := url.Parse(s.opts.FCMURL)
		tu, err2 := url.Parse(uri)
		if err1 == nil && err2 == nil && fu.Host == tu.Host && tu.Scheme == fu.Scheme {
			return nil
		}
	}
	return fmt.Errorf("token_uri must be %s", GoogleTokenURI)
}

// held keeps notifications queued while a brand's credentials are
// broken: they go out once new credentials are uploaded, or expire with
// their event.
type held struct {
	reason string
	now    func() time.Time
}

// Send implements Sender.
func (h held) Send(context.Context, Message) hotzone.Delivery {
	now := h.now()
	return hotzone.Delivery{Status: hotzone.StatusQueued, Error: h.reason, NextAttempt: now.Add(heldRetry), At: now}
}
