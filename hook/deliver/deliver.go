// Package deliver sends the webhook deliveries queued in storage: it
// claims them, posts each signed to its receiver with the hook package's
// guarded client, and records what came of it (delivered, to be retried
// with backoff for 24 hours, or failed).
package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/hook"
)

// Queue is what delivery needs of storage (hotzone.Webhooks): claims,
// their results, and the webhook a delivery goes to (for its URL and
// secret).
type Queue interface {
	ClaimDeliveries(ctx context.Context, now time.Time, limit, perHook int, lease time.Duration) ([]hotzone.HookDelivery, error)
	RecordAttempt(ctx context.Context, r hotzone.AttemptResult) error
	Webhook(ctx context.Context, brandID, id string) (hotzone.Webhook, error)
}

// Options tunes a Deliverer; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Client posts deliveries; hook.NewClient's by default (public
	// addresses only).
	Client *http.Client
	// PerHook caps the deliveries out at once to one webhook (default 4):
	// a slow receiver holds only its own.
	PerHook int
	// Concurrency caps the deliveries out at once in all (default 64).
	Concurrency int
	// Lease is how long a claimed delivery is ours before another sender
	// may take it (default 2 min: longer than a request may take).
	Lease time.Duration
	// Poll is how often the queue is looked at without a Wake (default
	// 1 s): retries come due on their own.
	Poll time.Duration
	// Rand draws the retry jitter; math/rand's by default.
	Rand func() float64
}

// Deliverer sends queued webhook deliveries; several (one per node) may
// work one queue.
type Deliverer struct {
	q    Queue
	opts Options
	wake chan struct{}
	sem  chan struct{}
	wg   sync.WaitGroup
}

// New returns a Deliverer working q.
func New(q Queue, opts Options) *Deliverer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = hook.NewClient(hook.ClientOptions{})
	}
	if opts.PerHook <= 0 {
		opts.PerHook = 4
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	return &Deliverer{q: q, opts: opts, wake: make(chan struct{}, 1), sem: make(chan struct{}, opts.Concurrency)}
}

// Wake asks for a look at the queue now (something was queued).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Wait blocks until the attempts under way have been recorded.
func (d *Deliverer) Wait() { d.wg.Wait() }

// Run delivers until ctx ends, then waits for the attempts under way.
func (d *Deliverer) Run(ctx context.Context) {
	defer d.wg.Wait()
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		n, err := d.Round(ctx)
		if err != nil && ctx.Err() == nil {
			d.opts.Logger.Warn("webhook deliveries", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// Round claims what is due (as much as there is room for) and starts an
// attempt for each; it answers how many it started.
func (d *Deliverer) Round(ctx context.Context) (int, error) {
	room := cap(d.sem) - len(d.sem)
	if room == 0 {
		return 0, nil
	}
	ds, err := d.q.ClaimDeliveries(ctx, d.opts.Now(), room, d.opts.PerHook, d.opts.Lease)
	if err != nil {
		return 0, err
	}
	for _, dl := range ds {
		d.sem <- struct{}{}
		d.wg.Go(func() {
			defer func() { <-d.sem }()
			// An attempt under way finishes even as the server stops: its
			// result is recorded, not left to the lease.
			actx := context.WithoutCancel(ctx)
			if err := d.q.RecordAttempt(actx, d.Attempt(actx, dl)); err != nil {
				d.opts.Logger.Warn("webhook delivery result", "delivery_id", dl.ID, "err", err)
			}
			d.Wake()
		})
	}
	return len(ds), nil
}

// Body is a delivery's JSON body.
func Body(h hotzone.Happening) ([]byte, error) {
	return json.Marshal(struct {
		ID        string           `json:"id"`
		Type      hotzone.HookType `json:"type"`
		CreatedAt time.Time        `json:"created_at"`
		Data      json.RawMessage  `json:"data"`
	}{h.ID, h.Type, h.CreatedAt.UTC(), h.Data})
}

// Attempt posts one delivery and answers its result: delivered on a
// 2xx; tried again later (Retry-After honoured) on a timeout, a refused
// connection, 408, 425, 429 or a 5xx, until 24 hours after it was
// queued; failed otherwise.
func (d *Deliverer) Attempt(ctx context.Context, dl hotzone.HookDelivery) hotzone.AttemptResult {
	r := hotzone.AttemptResult{BrandID: dl.BrandID, WebhookID: dl.WebhookID, DeliveryID: dl.ID, Claim: dl.Claim}
	w, err := d.q.Webhook(ctx, dl.BrandID, dl.WebhookID)
	if err != nil {
		r.At, r.Status, r.Error = d.opts.Now(), hotzone.DeliveryFailed, "webhook: "+err.Error()
		return r
	}
	body, err := Body(dl.Happening)
	if err != nil {
		r.At, r.Status, r.Error = d.opts.Now(), hotzone.DeliveryFailed, err.Error()
		return r
	}
	code, retryAfter, err := d.post(ctx, &w, body)
	r.At, r.Code = d.opts.Now(), code
	if errors.Is(err, hook.ErrPrivateAddress) {
		// Never going to work: the receiver resolves to an address the
		// server may not reach.
		r.Status, r.Error = hotzone.DeliveryFailed, "refused: the receiver's address is not public (see --webhook-allow-private)"
		return r
	}
	switch {
	case err == nil && code >= 200 && code < 300:
		r.Status = hotzone.DeliveryDelivered
		return r
	case err != nil:
		r.Error = err.Error()
	default:
		r.Error = http.StatusText(code)
	}
	if !hook.Retryable(code, err) {
		r.Status = hotzone.DeliveryFailed
		return r
	}
	first := dl.CreatedAt
	if first.IsZero() {
		first = r.At
	}
	next, ok := hook.NextAttempt(dl.Attempts+1, first, r.At, retryAfter, d.opts.Rand)
	if !ok {
		r.Status = hotzone.DeliveryFailed
		return r
	}
	r.Status, r.Next = hotzone.DeliveryPending, next
	return r
}

// post sends body to the webhook, signed, and answers the status and
// Retry-After of the answer.
func (d *Deliverer) post(ctx context.Context, w *hotzone.Webhook, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hotzone-webhooks/1")
	req.Header.Set(hook.SignatureHeader, hook.Sign([]byte(w.Secret), d.opts.Now(), body))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	// Drained so the connection is reused; the limit bounds it.
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}
