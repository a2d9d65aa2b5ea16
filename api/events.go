package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
)

type eventRequest struct {
	Title     *string `json:"title"`
	Body      *string `json:"body"`
	DurationS *int    `json:"duration_s"`
	URL       *string `json:"url"`
	// Localized: other languages' title and body, by BCP 47 tag.
	Localized map[string]messageRequest `json:"localized"`
	// Audience: who, by their tags, is notified; absent or null is
	// everyone.
	Audience *audienceRequest `json:"audience"`
	// HoldoutPct: the share held back for comparison; absent or null
	// takes the policy's.
	HoldoutPct *int `json:"holdout_pct"`
}

type audienceRequest struct {
	Any  []string `json:"any"`
	All  []string `json:"all"`
	None []string `json:"none"`
}

// checkAudience validates an audience: each list of valid tags, none
// twice in a list, at most 20 a list, and at least one tag in all.
func checkAudience(errs *fieldErrors, field string, a *audienceRequest) *hotzone.Audience {
	if a == nil {
		return nil
	}
	out := &hotzone.Audience{}
	lists := []struct {
		name string
		in   []string
		dst  *[]string
	}{{"any", a.Any, &out.Any}, {"all", a.All, &out.All}, {"none", a.None, &out.None}}
	total := 0
	for _, l := range lists {
		*l.dst = checkTags(errs, joinPath(field, l.name), l.in)
		total += len(l.in)
	}
	if total == 0 {
		errs.add(joinPath(field, "any"), "an audience must name at least one tag in any, all or none")
	}
	return out
}

type messageRequest struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

// maxVariants bounds an event's languages.
const maxVariants = 50

// eventJSON is an event as answered; every member is always present.
type eventJSON struct {
	ID       string         `json:"id"`
	StoreID  string         `json:"store_id"`
	Title    string         `json:"title"`
	Body     string         `json:"body"`
	URL      *string        `json:"url"`
	StartsAt time.Time      `json:"starts_at"`
	EndsAt   time.Time      `json:"ends_at"`
	Status   string         `json:"status"`
	Counts   hotzone.Counts `json:"counts"`
	// Localized is null for an event with one language (a nil map would
	// be {}).
	Localized any `json:"localized"`
	// Audience is null for everyone.
	Audience *audienceJSON `json:"audience"`
	// HoldoutPct is null when the event takes the policy's.
	HoldoutPct *int `json:"holdout_pct"`
}

// audienceJSON answers an audience with its three lists always present.
type audienceJSON struct {
	Any  []string `json:"any"`
	All  []string `json:"all"`
	None []string `json:"none"`
}

func toAudienceJSON(a *hotzone.Audience) *audienceJSON {
	if a == nil {
		return nil
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return &audienceJSON{Any: nonNil(a.Any), All: nonNil(a.All), None: nonNil(a.None)}
}

func toEventJSON(ev hotzone.Event, c hotzone.Counts) eventJSON {
	return eventJSON{ID: ev.ID, StoreID: ev.StoreID, Title: ev.Title, Body: ev.Body, URL: ev.URL,
		StartsAt: ev.StartsAt.UTC(), EndsAt: ev.EndsAt.UTC(), Status: string(ev.Status), Counts: c, Localized: localizedJSON(ev.Localized),
		Audience: toAudienceJSON(ev.Audience), HoldoutPct: ev.HoldoutPct}
}

func localizedJSON(m map[string]hotzone.Message) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// checkLocalized validates an event's languages: a BCP 47 tag each, at
// most one per tag however it is cased, each with a title and a body as
// the default's.
func checkLocalized(errs *fieldErrors, in map[string]messageRequest) map[string]hotzone.Message {
	if len(in) == 0 {
		return nil
	}
	if len(in) > maxVariants {
		errs.add("localized", "must have at most "+strconv.Itoa(maxVariants)+" languages")
		return nil
	}
	out := make(map[string]hotzone.Message, len(in))
	seen := map[string]string{}
	for _, tag := range slices.Sorted(maps.Keys(in)) {
		m := in[tag]
		field := "localized." + tag
		if !hotzone.ValidLanguageTag(tag) {
			errs.add(field, "must be a BCP 47 language tag such as de or de-CH")
			continue
		}
		if other, dup := seen[strings.ToLower(tag)]; dup {
			errs.add(field, "names the same language as "+other)
			continue
		}
		seen[strings.ToLower(tag)] = tag
		out[tag] = hotzone.Message{Title: checkText(errs, field+".title", m.Title, 100), Body: checkText(errs, field+".body", m.Body, 500)}
	}
	return out
}

// maxDurationS is the longest event, in seconds (duration_s).
const maxDurationS = int(hotzone.MaxEventDuration / time.Second)

// checkDuration checks an event's duration_s, from a start or a preset.
func checkDuration(errs *fieldErrors, dur int) {
	if dur < 60 || dur > maxDurationS {
		errs.add("duration_s", "must be between 60 and "+strconv.Itoa(maxDurationS))
	}
}

const (
	defaultDuration = 1800
	maxIdemKey      = 255
)

func (s *Server) handleStartEvent() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		st, err := s.storeAccess(c, k, c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		var req eventRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		idem := c.GetHeader("Idempotency-Key")
		if _, sent := c.Request.Header["Idempotency-Key"]; sent && (idem == "" || len(idem) > maxIdemKey || strings.ContainsFunc(idem, isControl)) {
			errs.add("Idempotency-Key", "must be 1 to 255 printable characters")
		}
		title := checkText(&errs, "title", req.Title, 100)
		body := checkText(&errs, "body", req.Body, 500)
		localized := checkLocalized(&errs, req.Localized)
		audience := checkAudience(&errs, "audience", req.Audience)
		if h := req.HoldoutPct; h != nil && (*h < 0 || *h > hotzone.MaxHoldoutPct) {
			errs.add("holdout_pct", "must be between 0 and "+strconv.Itoa(hotzone.MaxHoldoutPct))
		}
		dur := defaultDuration
		if req.DurationS != nil {
			dur = *req.DurationS
			checkDuration(&errs, dur)
		}
		if req.URL != nil {
			if u, err := url.Parse(*req.URL); err != nil || u.Scheme == "" || len(*req.URL) > 2048 || strings.ContainsFunc(*req.URL, isControl) {
				errs.add("url", "must be an absolute URL such as app://store/main-st (at most 2048 characters)")
			}
		}
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		now := s.now().UTC()
		ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: k.BrandID, StoreID: st.ID, Title: title, Body: body, URL: req.URL,
			StartsAt: now, EndsAt: now.Add(time.Duration(dur) * time.Second), Status: hotzone.EventLive, Localized: localized, Audience: audience, HoldoutPct: req.HoldoutPct}
		// Every variant's payload must fit, each named by its field.
		var tooLong []hotzone.FieldError
		largest := 0
		for _, v := range append([]string{""}, slices.Sorted(maps.Keys(localized))...) {
			if n, fits := push.PayloadFits(ev, v); !fits {
				field := "body"
				if v != "" {
					field = "localized." + v
				}
				largest = max(largest, n)
				tooLong = append(tooLong, hotzone.FieldError{Field: field, Message: "title and body together are too long for a push payload (counted in bytes)"})
			}
		}
		if len(tooLong) > 0 {
			s.fail(c, &hotzone.ValidationError{Detail: fmt.Sprintf("the push payload would be %d bytes; providers accept at most %d", largest, push.MaxPayloadBytes),
				Errors: tooLong})
			return
		}
		ev, counts, _, err := s.engine.StartEvent(c, ev, idem)
		if errors.Is(err, hotzone.ErrConflict) && ev.ID != "" {
			s.fail(c, &httpError{status: http.StatusConflict, detail: "the store already has a live event", event: toEventJSON(ev, counts)})
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusCreated, toEventJSON(ev, counts))
	}
}

// checkText validates a required text of 1..max characters.
func checkText(errs *fieldErrors, field string, v *string, maxLen int) string {
	if v == nil {
		errs.add(field, "required")
		return ""
	}
	if n := utf8.RuneCountInString(*v); n < 1 || n > maxLen || strings.TrimSpace(*v) == "" {
		errs.add(field, "must be 1 to "+strconv.Itoa(maxLen)+" characters")
	}
	return *v
}

func (s *Server) handleGetLiveEvent() gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.storeAccess(c, keyOf(c), c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		ev, counts, err := s.db.LiveEvent(c, st.BrandID, st.ID)
		if errors.Is(err, hotzone.ErrNotFound) {
			s.fail(c, newHTTPError(http.StatusNotFound, "the store has no live event"))
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, toEventJSON(ev, counts))
	}
}

func (s *Server) handleEndLiveEvent() gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.storeAccess(c, keyOf(c), c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		ev, counts, err := s.engine.EndLiveEvent(c, st.BrandID, st.ID)
		if errors.Is(err, hotzone.ErrNotFound) {
			s.fail(c, newHTTPError(http.StatusNotFound, "the store has no live event"))
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, toEventJSON(ev, counts))
	}
}

func (s *Server) handleListEvents() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		status := hotzone.EventStatus(c.Query("status"))
		if status != "" && status != hotzone.EventLive && status != hotzone.EventEnded {
			s.fail(c, hotzone.Invalid("status", `must be "live" or "ended"`))
			return
		}
		evs, more, err := s.db.Events(c, keyOf(c).BrandID, hotzone.EventQuery{Status: status, StoreID: c.Query("store_id"), Before: pg.after, Limit: pg.limit})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[eventJSON]{Items: make([]eventJSON, len(evs))}
		for i, e := range evs {
			out.Items[i] = toEventJSON(e.Event, e.Counts)
		}
		if more {
			out.NextCursor = encodeCursor(evs[len(evs)-1].Event.ID)
		}
		ok(c, http.StatusOK, out)
	}
}

// notificationJSON is a delivery-log entry as answered.
type notificationJSON struct {
	ID        string     `json:"id"`
	EventID   string     `json:"event_id"`
	StoreID   string     `json:"store_id"`
	DeviceID  string     `json:"device_id"`
	Provider  *string    `json:"provider"`
	Status    string     `json:"status"`
	Reason    *string    `json:"reason"`
	Attempts  int        `json:"attempts"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
	LastError *string    `json:"last_error"`
}

func toNotificationJSON(n hotzone.Notification) notificationJSON {
	out := notificationJSON{ID: n.ID, EventID: n.EventID, StoreID: n.StoreID, DeviceID: n.DeviceID, Status: string(n.Status),
		Attempts: n.Attempts, CreatedAt: n.CreatedAt.UTC(), SentAt: n.SentAt, LastError: n.LastError}
	if n.Provider != "" {
		p := string(n.Provider)
		out.Provider = &p
	}
	if n.Reason != "" {
		r := n.Reason
		out.Reason = &r
	}
	return out
}

var notificationStatuses = map[string]bool{"queued": true, "sent": true, "dry_run": true, "suppressed": true, "failed": true, "expired": true, "invalid_token": true}

func (s *Server) handleListNotifications() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		q := hotzone.NotificationQuery{EventID: c.Query("event_id"), DeviceID: c.Query("device_id"), Status: hotzone.NotificationStatus(c.Query("status")),
			Before: pg.after, Limit: pg.limit}
		if q.Status != "" && !notificationStatuses[string(q.Status)] {
			s.fail(c, hotzone.Invalid("status", "must be one of queued, sent, dry_run, suppressed, failed, expired, invalid_token"))
			return
		}
		ns, more, err := s.db.Notifications(c, keyOf(c).BrandID, q)
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[notificationJSON]{Items: make([]notificationJSON, len(ns))}
		for i, n := range ns {
			out.Items[i] = toNotificationJSON(n)
		}
		if more {
			out.NextCursor = encodeCursor(ns[len(ns)-1].ID)
		}
		ok(c, http.StatusOK, out)
	}
}

// Live-stream timing: heartbeats keep proxies from closing an idle
// stream; the coalescing gap keeps a 100,000-device fan-out from
// becoming 100,000 messages.
const (
	streamHeartbeat = 15 * time.Second
	streamCoalesce  = 250 * time.Millisecond
)

func (s *Server) handleEventStream() gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.storeAccess(c, keyOf(c), c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		w := c.Writer
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		// The stream outlives the server's write timeout by design.
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		ctx := c.Request.Context()
		var (
			lastID     string
			lastCounts hotzone.Counts
			sentAny    bool
		)
		send := func(name string, v any) bool {
			buf, err := json.Marshal(v)
			if err != nil {
				return false
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, buf); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		// A comment line gets the headers to the client at once; SSE
		// parsers ignore it.
		if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil || rc.Flush() != nil {
			return
		}
		heartbeat := time.NewTicker(streamHeartbeat)
		defer heartbeat.Stop()
		k := keyOf(c)
		for {
			// Asked before reading, so no change is missed. An error here
			// is the storage failing mid-stream: the stream ends, and the
			// client's reconnect gets a proper answer.
			changed, err := s.db.Changed(ctx, st.BrandID, st.ID)
			if err != nil {
				s.log.Warn("live stream: watch", "err", err)
				return
			}
			if active, err := s.db.KeyActive(ctx, k); err != nil || !active {
				// Revoked (or its store deleted) while streaming: the
				// stream ends with the key; a reconnect then gets 401.
				return
			}
			ev, counts, err := s.db.LiveEvent(ctx, st.BrandID, st.ID)
			live := err == nil
			if err != nil && !errors.Is(err, hotzone.ErrNotFound) {
				s.log.Warn("live stream: read the live event", "err", err)
				return
			}
			if lastID != "" && (!live || ev.ID != lastID) {
				if old, oc, err := s.db.Event(ctx, st.BrandID, lastID); err == nil {
					if !send("ended", toEventJSON(old, oc)) {
						return
					}
				}
				lastID = ""
			}
			if live && (ev.ID != lastID || counts != lastCounts || !sentAny) {
				if !send("counts", toEventJSON(ev, counts)) {
					return
				}
				lastID, lastCounts, sentAny = ev.ID, counts, true
			}
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			case <-heartbeat.C:
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			case <-changed:
				select {
				case <-ctx.Done():
					return
				case <-time.After(streamCoalesce):
				}
			}
		}
	}
}
