package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/hook"
)

// maxWebhooks bounds a brand's webhooks: each happening costs a write
// per webhook.
const maxWebhooks = 20

type webhookRequest struct {
	URL    *string  `json:"url"`
	Events []string `json:"events"`
}

type webhookPatch struct {
	Status *string `json:"status"`
}

// webhookJSON is a webhook as answered; Secret only when it is created.
type webhookJSON struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	Secret       string     `json:"secret,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	Status       string     `json:"status"`
	FailingSince *time.Time `json:"failing_since"`
}

func toWebhookJSON(w hotzone.Webhook) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Events: make([]string, len(w.Events)), CreatedAt: w.CreatedAt.UTC(), Status: string(w.Status)}
	for i, e := range w.Events {
		out.Events[i] = string(e)
	}
	if !w.FailingSince.IsZero() {
		t := w.FailingSince.UTC()
		out.FailingSince = &t
	}
	return out
}

// deliveryJSON is a delivery as answered.
type deliveryJSON struct {
	ID            string          `json:"id"`
	EventID       string          `json:"event_id"` // the body's "id": one per happening
	Type          string          `json:"type"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"created_at"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	LastAttemptAt *time.Time      `json:"last_attempt_at"`
	LastStatus    *int            `json:"last_status"`
	LastError     *string         `json:"last_error"`
	DeliveredAt   *time.Time      `json:"delivered_at"`
	Data          json.RawMessage `json:"data"`
}

func toDeliveryJSON(d hotzone.HookDelivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, EventID: d.Happening.ID, Type: string(d.Happening.Type), Status: string(d.Status),
		Attempts: d.Attempts, CreatedAt: d.CreatedAt.UTC(), Data: d.Happening.Data}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	if d.Status == hotzone.DeliveryPending {
		out.NextAttemptAt = at(d.NextAttempt)
	}
	out.LastAttemptAt, out.DeliveredAt = at(d.LastAttemptAt), at(d.DeliveredAt)
	if d.Attempts > 0 {
		if d.LastCode != 0 {
			out.LastStatus = &d.LastCode
		}
		if d.LastError != "" {
			out.LastError = &d.LastError
		}
	}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("null")
	}
	return out
}

// checkHookEvents validates a webhook's events: known, no repeats, at
// least one.
func checkHookEvents(errs *fieldErrors, events []string) []hotzone.HookType {
	if events == nil {
		errs.add("events", "required")
		return nil
	}
	if len(events) == 0 {
		errs.add("events", "must name at least one event")
	}
	seen := map[string]bool{}
	out := make([]hotzone.HookType, 0, len(events))
	for i, e := range events {
		field := "events[" + strconv.Itoa(i) + "]"
		known := false
		for _, t := range hotzone.HookTypes {
			known = known || string(t) == e
		}
		switch {
		case !known:
			errs.add(field, "must be one of entered, dwelled, exited, event.started, event.ended, notification.sent, notification.failed, visit")
		case seen[e]:
			errs.add(field, "is listed twice")
		}
		seen[e] = true
		out = append(out, hotzone.HookType(e))
	}
	return out
}

func (s *Server) handleCreateWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req webhookRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		types := checkHookEvents(&errs, req.Events)
		var u *url.URL
		if req.URL == nil {
			errs.add("url", "required")
		} else if parsed, err := hook.CheckURL(*req.URL); err != nil {
			errs.add("url", err.Error())
		} else {
			u = parsed
		}
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		// Advice at registration; the sender checks every connection. A
		// name that does not resolve now (a receiver not deployed yet, or
		// no DNS here) is accepted: its deliveries resolve it again.
		dctx, cancel := context.WithTimeout(c, 2*time.Second)
		err := hook.CheckHost(dctx, u, s.webhookAllowPrivate, nil)
		cancel()
		if errors.Is(err, hook.ErrPrivateAddress) {
			s.fail(c, hotzone.Invalid("url", err.Error()))
			return
		}
		brandID := keyOf(c).BrandID
		have, _, err := s.db.Webhooks(c, brandID, hotzone.PageQuery{Limit: maxWebhooks})
		if err != nil {
			s.fail(c, err)
			return
		}
		if len(have) >= maxWebhooks {
			s.fail(c, fmt.Errorf("a brand has at most %d webhooks: %w", maxWebhooks, hotzone.ErrConflict))
			return
		}
		secret, err := hook.NewSecret()
		if err != nil {
			s.fail(c, err)
			return
		}
		now := s.now()
		w := hotzone.Webhook{ID: hotzone.NewID(now), BrandID: brandID, URL: u.String(), Events: types, Secret: secret,
			CreatedAt: now.UTC(), Status: hotzone.WebhookActive}
		if err := s.db.CreateWebhook(c, w); err != nil {
			s.fail(c, err)
			return
		}
		out := toWebhookJSON(w)
		out.Secret = secret
		c.Header("Location", "/v1/webhooks/"+w.ID)
		ok(c, http.StatusCreated, out)
	}
}

func (s *Server) handleListWebhooks() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		ws, more, err := s.db.Webhooks(c, keyOf(c).BrandID, hotzone.PageQuery{After: pg.after, Limit: pg.limit})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[webhookJSON]{Items: make([]webhookJSON, len(ws))}
		for i, w := range ws {
			out.Items[i] = toWebhookJSON(w)
		}
		if more {
			out.NextCursor = encodeCursor(ws[len(ws)-1].ID)
		}
		ok(c, http.StatusOK, out)
	}
}

func (s *Server) handleGetWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		w, err := s.db.Webhook(c, keyOf(c).BrandID, c.Param("webhook_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, toWebhookJSON(w))
	}
}

func (s *Server) handlePatchWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req webhookPatch
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		if req.Status == nil || (*req.Status != string(hotzone.WebhookActive) && *req.Status != string(hotzone.WebhookDisabled)) {
			s.fail(c, hotzone.Invalid("status", `must be "active" or "disabled"`))
			return
		}
		w, err := s.db.SetWebhookStatus(c, keyOf(c).BrandID, c.Param("webhook_id"), hotzone.WebhookStatus(*req.Status))
		if err != nil {
			s.fail(c, err)
			return
		}
		s.wakeHooks()
		ok(c, http.StatusOK, toWebhookJSON(w))
	}
}

func (s *Server) handleDeleteWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.db.DeleteWebhook(c, keyOf(c).BrandID, c.Param("webhook_id")); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

func (s *Server) handleTestWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		now := s.now()
		data, _ := json.Marshal(map[string]string{"message": "a test delivery from hotzone"})
		d, err := s.db.EmitTo(c, keyOf(c).BrandID, c.Param("webhook_id"),
			hotzone.Happening{ID: hotzone.NewID(now), Type: hotzone.HookTest, CreatedAt: now.UTC(), Data: data})
		if err != nil {
			s.fail(c, err)
			return
		}
		s.wakeHooks()
		ok(c, http.StatusAccepted, toDeliveryJSON(d))
	}
}

func (s *Server) handleListDeliveries() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		status := hotzone.DeliveryStatus(c.Query("status"))
		switch status {
		case "", hotzone.DeliveryPending, hotzone.DeliveryDelivered, hotzone.DeliveryFailed:
		default:
			s.fail(c, hotzone.Invalid("status", `must be "pending", "delivered" or "failed"`))
			return
		}
		ds, more, err := s.db.Deliveries(c, keyOf(c).BrandID, c.Param("webhook_id"), hotzone.DeliveryQuery{Status: status, Before: pg.after, Limit: pg.limit})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[deliveryJSON]{Items: make([]deliveryJSON, len(ds))}
		for i, d := range ds {
			out.Items[i] = toDeliveryJSON(d)
		}
		if more {
			out.NextCursor = encodeCursor(ds[len(ds)-1].ID)
		}
		ok(c, http.StatusOK, out)
	}
}

// handleRetryDelivery queues a failed delivery again: a new delivery of
// the same happening (the body's id is the same, so a receiver that did
// get it can tell), due now, at the end of its device's order.
func (s *Server) handleRetryDelivery() gin.HandlerFunc {
	return func(c *gin.Context) {
		brandID, hookID := keyOf(c).BrandID, c.Param("webhook_id")
		d, err := s.db.Delivery(c, brandID, hookID, c.Param("delivery_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		if d.Status != hotzone.DeliveryFailed {
			s.fail(c, fmt.Errorf("only a failed delivery can be retried; this one is %s: %w", d.Status, hotzone.ErrConflict))
			return
		}
		next, err := s.db.EmitTo(c, brandID, hookID, d.Happening)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.wakeHooks()
		ok(c, http.StatusAccepted, toDeliveryJSON(next))
	}
}
