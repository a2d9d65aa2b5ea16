package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
)

// pingRequest is a decoded ping; a member that was absent or null is
// not ok, so a missing lat can never read as 0.
type pingRequest struct {
	DeviceID, TS        optString
	Lat, Lon, AccuracyM optFloat
	SpeedMPS            optFloat // optional (an extension of the contract)
}

type optString struct {
	v  string
	ok bool
}

type optFloat struct {
	v  float64
	ok bool
}

type insideJSON struct {
	StoreID string `json:"store_id"`
	Name    string `json:"name"`
}

type liveEventRef struct {
	EventID string  `json:"event_id"`
	StoreID string  `json:"store_id"`
	Title   string  `json:"title"`
	Body    string  `json:"body"`
	URL     *string `json:"url"`
}

type pingNotification struct {
	EventID string `json:"event_id"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

type pingResponse struct {
	Inside        []insideJSON       `json:"inside"`
	LiveEvents    []liveEventRef     `json:"live_events"`
	Notifications []pingNotification `json:"notifications"`
}

// maxFutureSkew is how far ahead of the server's clock a ping's ts may be.
const maxFutureSkew = 60 * time.Second

var jsonContentType = []string{"application/json"}

func (s *Server) handlePing() func(*gin.Context, *hotzone.Key) {
	return func(c *gin.Context, k *hotzone.Key) {
		pc := pingCodecs.Get().(*pingCodec)
		defer pingCodecs.Put(pc)
		body, err := readBodyInto(c, limitPing, pc.buf[:0])
		if err != nil {
			s.fail(c, err)
			return
		}
		pc.buf = body[:0]
		start := time.Now()
		req, err := decodePing(body, "")
		if err == nil {
			err = s.ping(c, k.BrandID, &req, "", s.at(start), &pc.ans, &pc.resp)
		}
		s.metrics.ping(err, time.Since(start))
		if err != nil {
			s.fail(c, err)
			return
		}
		out := appendPingResponse(pc.buf[:0], &pc.resp)
		pc.buf = out[:0]
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Writer.WriteHeader(http.StatusOK)
		_, _ = c.Writer.Write(out)
	}
}

type batchRequest struct {
	Pings []jsontext.Value `json:"pings"`
}

// maxBatch is the most pings one batch may carry.
const maxBatch = 500

// batchPrefixes are the pings' JSON paths, made once.
var batchPrefixes = func() (p [maxBatch]string) {
	for i := range p {
		p[i] = "pings[" + strconv.Itoa(i) + "]"
	}
	return p
}()

// batchCodec is a batch request's scratch space, pooled: the body, where
// each ping is in it, and the answer being written.
type batchCodec struct {
	body  []byte
	reqs  []pingRequest // the pings, when scanBatch could read them all
	spans [][2]int      // else where each ping is in body
	out   []byte
	r     bytes.Reader
	d     *jsontext.Decoder
	ans   push.PingAnswer
	resp  pingResponse
}

var batchCodecs = sync.Pool{New: func() any {
	bc := &batchCodec{}
	bc.d = jsontext.NewDecoder(&bc.r)
	return bc
}}

// split finds each ping of a batch body, {"pings":[…]}, without decoding
// it: the pings are decoded one by one as they are handled, so one bad
// ping fails only itself. Anything but that plain shape (an escaped
// name, a missing or null member, another member, a syntax error) is
// left to the general strict decoder, which words the error as for
// every other body; what it accepts is split from its result.
func (bc *batchCodec) split() error {
	bc.spans = bc.spans[:0]
	bc.r.Reset(bc.body)
	d := bc.d
	d.Reset(&bc.r)
	fast := func() bool {
		if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
			return false
		}
		name, err := d.ReadValue()
		if err != nil || string(name) != `"pings"` {
			return false
		}
		if tok, err := d.ReadToken(); err != nil || tok.Kind() != '[' {
			return false
		}
		for d.PeekKind() != ']' {
			v, err := d.ReadValue()
			if err != nil {
				return false
			}
			end := int(d.InputOffset())
			bc.spans = append(bc.spans, [2]int{end - len(v), end})
		}
		if _, err := d.ReadToken(); err != nil { // ]
			return false
		}
		if tok, err := d.ReadToken(); err != nil || tok.Kind() != '}' {
			return false
		}
		_, err = d.ReadToken()
		return errors.Is(err, io.EOF)
	}
	if fast() {
		return nil
	}
	bc.spans = bc.spans[:0]
	var req batchRequest
	if err := decodeJSON(bc.body, "", &req); err != nil {
		return err
	}
	if req.Pings == nil {
		return hotzone.Invalid("pings", "required")
	}
	// The general decoder accepted it (an escaped name, say): each ping
	// is appended to the body's buffer so that spans can point at it.
	for _, v := range req.Pings {
		start := len(bc.body)
		bc.body = append(bc.body, v...)
		bc.spans = append(bc.spans, [2]int{start, len(bc.body)})
	}
	return nil
}

func (s *Server) handlePingBatch() func(*gin.Context, *hotzone.Key) {
	return func(c *gin.Context, k *hotzone.Key) {
		bc := batchCodecs.Get().(*batchCodec)
		defer batchCodecs.Put(bc)
		body, err := readBodyInto(c, limitDefault, bc.body[:0])
		if err != nil {
			s.fail(c, err)
			return
		}
		bc.body = body
		// The common shape is read in one pass; anything else is split
		// first, so its pings are decoded (and refused) one by one.
		var fast bool
		bc.reqs, fast = scanBatch(body, bc.reqs[:0])
		n := len(bc.reqs)
		if !fast {
			if err := bc.split(); err != nil {
				s.fail(c, err)
				return
			}
			n = len(bc.spans)
		}
		if n > maxBatch {
			s.fail(c, hotzone.Invalid("pings", "at most "+strconv.Itoa(maxBatch)+" pings in one batch"))
			return
		}
		out := append(bc.out[:0], `{"results":[`...)
		for i := range n {
			if i > 0 {
				out = append(out, ',')
			}
			prefix := batchPrefixes[i]
			start := time.Now()
			var (
				p   pingRequest
				err error
			)
			if fast {
				p = bc.reqs[i]
			} else {
				p, err = decodePing(bc.body[bc.spans[i][0]:bc.spans[i][1]], prefix)
			}
			if err == nil {
				err = s.ping(c, k.BrandID, &p, prefix, s.at(start), &bc.ans, &bc.resp)
			}
			s.metrics.ping(err, time.Since(start))
			if err != nil {
				// One bad ping does not fail the batch: its slot holds its
				// problem, with the status it would have had alone.
				prob, _ := toProblem(err)
				if prob.Status == 500 {
					s.log.Error("internal error in batch ping", "err", err)
				}
				buf, merr := json.Marshal(prob)
				if merr != nil {
					s.fail(c, merr)
					return
				}
				out = append(out, buf...)
				continue
			}
			out = appendPingResponse(out, &bc.resp)
		}
		out = append(out, "]}"...)
		bc.out = out
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Writer.WriteHeader(http.StatusOK)
		_, _ = c.Writer.Write(out)
	}
}

// ping validates one ping and hands it to the engine; prefix is the
// ping's JSON path in a batch, and ans scratch space the caller may
// reuse.
// ping records one ping received at now and fills resp with the answer,
// reusing its slices.
func (s *Server) ping(ctx context.Context, brandID string, req *pingRequest, prefix string, now time.Time, ans *push.PingAnswer, resp *pingResponse) error {
	var errs fieldErrors
	field := func(name string) string { return joinPath(prefix, name) }
	if !req.DeviceID.ok {
		errs.add(field("device_id"), "required")
	} else if !validDeviceID(req.DeviceID.v) {
		errs.add(field("device_id"), "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	checkRange(&errs, field("lat"), req.Lat, -90, 90)
	checkRange(&errs, field("lon"), req.Lon, -180, 180)
	checkRange(&errs, field("accuracy_m"), req.AccuracyM, 0, 100000)
	if req.SpeedMPS.ok {
		checkRange(&errs, field("speed_mps"), req.SpeedMPS, 0, 1000)
	}
	ts := now
	if req.TS.ok {
		t, err := time.Parse(time.RFC3339Nano, req.TS.v)
		switch {
		case err != nil:
			errs.add(field("ts"), "must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
		case t.Sub(now) > maxFutureSkew:
			errs.add(field("ts"), "is more than 60 s in the future")
		default:
			ts = t
		}
	}
	if len(errs) > 0 {
		return errs.err()
	}
	pos := hotzone.Position{Lat: req.Lat.v, Lon: req.Lon.v, AccuracyM: req.AccuracyM.v, TS: ts.UTC()}
	if req.SpeedMPS.ok {
		pos.SpeedMPS = &req.SpeedMPS.v
	}
	if err := s.engine.Ping(ctx, brandID, req.DeviceID.v, pos, now, ans); err != nil {
		return unknownDevice(err)
	}
	resp.Inside, resp.LiveEvents, resp.Notifications = resp.Inside[:0], resp.LiveEvents[:0], resp.Notifications[:0]
	for _, h := range ans.Inside {
		resp.Inside = append(resp.Inside, insideJSON{StoreID: h.ID, Name: h.Label})
	}
	for _, r := range ans.Results {
		resp.LiveEvents = append(resp.LiveEvents, liveEventRef{EventID: r.Event.ID, StoreID: r.Event.StoreID, Title: r.Event.Title, Body: r.Event.Body, URL: r.Event.URL})
		resp.Notifications = append(resp.Notifications, pingNotification{EventID: r.Event.ID, Status: string(r.Status), Reason: string(r.Reason)})
	}
	return nil
}

// at is the server's time for a request that arrived at start (a
// reading of the real clock): start itself, unless a test set a clock.
func (s *Server) at(start time.Time) time.Time {
	if s.realClock {
		return start
	}
	return s.now()
}

// unknownDevice words the contract's 404 for a ping of an unregistered
// device, and a rate limit as the contract's 429.
func unknownDevice(err error) error {
	var limited *push.RateLimitedError
	switch {
	case errors.Is(err, hotzone.ErrNotFound):
		return newHTTPError(http.StatusNotFound, "unknown device: register it with PUT /v1/devices/{device_id} first")
	case errors.As(err, &limited):
		return &httpError{status: http.StatusTooManyRequests, detail: "this device pings too often", retryAfter: limited.RetryAfter}
	}
	return err
}

func checkRange(errs *fieldErrors, field string, v optFloat, lo, hi float64) {
	switch {
	case !v.ok:
		errs.add(field, "required")
	case math.IsNaN(v.v) || v.v < lo || v.v > hi:
		errs.add(field, "must be between "+fmtFloat(lo)+" and "+fmtFloat(hi))
	}
}

// validDeviceID is validID(deviceIDPattern, id) without the regular
// expression, which cost a ping more than the rest of its checks.
func validDeviceID(id string) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
