package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"

	"github.com/hotzone/hotzone"
)

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []hotzone.FieldError `json:"errors,omitempty"`
	// Event is the extension member of a 409 at event start: the event
	// that is already live.
	Event any `json:"event,omitempty"`
}

// httpError is an error that already knows its status: decoding limits,
// rate limits, auth.
type httpError struct {
	status     int
	detail     string
	retryAfter time.Duration
	errors     []hotzone.FieldError
	event      any
}

func (e *httpError) Error() string { return e.detail }

func newHTTPError(status int, detail string) *httpError {
	return &httpError{status: status, detail: detail}
}

// problemTypes gives each status a stable, documented type URI.
var problemTypes = map[int]string{
	400: "https://hotzone.dev/problems/invalid-request",
	401: "https://hotzone.dev/problems/unauthorized",
	403: "https://hotzone.dev/problems/forbidden",
	404: "https://hotzone.dev/problems/not-found",
	405: "https://hotzone.dev/problems/method-not-allowed",
	409: "https://hotzone.dev/problems/conflict",
	413: "https://hotzone.dev/problems/body-too-large",
	415: "https://hotzone.dev/problems/unsupported-media-type",
	429: "https://hotzone.dev/problems/rate-limited",
	500: "https://hotzone.dev/problems/internal",
	503: "https://hotzone.dev/problems/unavailable",
}

// toProblem is the one place where errors become statuses.
func toProblem(err error) (problem, time.Duration) {
	var (
		he *httpError
		ve *hotzone.ValidationError
		p  problem
		ra time.Duration
	)
	switch {
	case errors.As(err, &he):
		p = problem{Status: he.status, Detail: he.detail, Errors: he.errors, Event: he.event}
		ra = he.retryAfter
	case errors.As(err, &ve):
		p = problem{Status: 400, Detail: ve.Error(), Errors: ve.Errors}
		if ve.Detail != "" {
			p.Detail = ve.Detail
		}
	case errors.Is(err, hotzone.ErrNotFound):
		p = problem{Status: 404, Detail: "no such resource"}
	case errors.Is(err, hotzone.ErrConflict):
		p = problem{Status: 409, Detail: err.Error()}
	case errors.Is(err, hotzone.ErrForbidden):
		p = problem{Status: 403, Detail: "this key may not do that"}
	case errors.Is(err, hotzone.ErrUnauthorized):
		p = problem{Status: 401, Detail: "a valid key is required: Authorization: Bearer <key>"}
	case errors.Is(err, hotzone.ErrUnavailable):
		// Nothing was accepted: the request may be sent again as it is.
		p = problem{Status: 503, Detail: "storage is unavailable for a moment (a failover?); the request may be retried as it is"}
		ra = time.Second
	default:
		p = problem{Status: 500, Detail: "internal error"}
	}
	p.Type = problemTypes[p.Status]
	p.Title = http.StatusText(p.Status)
	return p, ra
}

// writeProblem answers err as problem+json and stops the chain. A 500 is
// logged here, once, with the request id that the client also sees.
func writeProblem(c *gin.Context, log *slog.Logger, err error) {
	p, retryAfter := toProblem(err)
	if p.Status == 500 && log != nil {
		log.Error("internal error", "request_id", c.Writer.Header().Get(headerRequestID), "route", c.FullPath(), "err", err)
	}
	if p.Status == 401 {
		c.Header("WWW-Authenticate", `Bearer realm="hotzone"`)
	}
	if retryAfter > 0 {
		secs := int((retryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(c, p.Status, "application/problem+json", p)
	c.Abort()
}

// writeJSON marshals v; the go-json-experiment encoder writes nil slices
// as [] so "items is always an array" holds by construction.
func writeJSON(c *gin.Context, status int, contentType string, v any) {
	// Deterministic: map-built answers come out byte-stable.
	buf, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		buf = []byte(`{"type":"https://hotzone.dev/problems/internal","title":"Internal Server Error","status":500}`)
		status, contentType = 500, "application/problem+json"
	}
	c.Data(status, contentType, buf)
}

// ok answers 200/201 with a JSON body.
func ok(c *gin.Context, status int, v any) {
	writeJSON(c, status, "application/json", v)
}
