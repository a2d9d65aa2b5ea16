package api

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
)

var (
	deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	apnsToken       = regexp.MustCompile(`^(?:[0-9A-Fa-f]{2}){32,100}$`)
	fcmToken        = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`) // and at most 4096 long
)

type pushJSON struct {
	Provider *string `json:"provider"`
	Token    *string `json:"token"`
}

type deviceRequest struct {
	Platform *string        `json:"platform"`
	Push     jsontext.Value `json:"push"`
	OptIn    *bool          `json:"opt_in"`
	Timezone *string        `json:"timezone"`
	Locale   *string        `json:"locale"`
	Tags     *[]string      `json:"tags"`
}

type deviceJSON struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform"`
	Push      *pushOut  `json:"push"`
	OptIn     bool      `json:"opt_in"`
	Timezone  string    `json:"timezone"`
	Locale    *string   `json:"locale"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// pushOut never carries the token: an app key is public, and whoever
// holds it must not be able to read other devices' tokens back.
type pushOut struct {
	Provider string `json:"provider"`
}

// toDeviceJSON is a device as the API answers it, for the encoder;
// appendDevice writes the same by hand on the registration path.
func toDeviceJSON(d hotzone.Device) deviceJSON {
	out := deviceJSON{ID: d.ID, Platform: string(d.Platform), OptIn: d.OptIn, Timezone: d.Timezone, Tags: d.Tags, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if d.Token != "" {
		out.Push = &pushOut{Provider: string(d.Provider)}
	}
	if d.Locale != "" {
		l := d.Locale
		out.Locale = &l
	}
	return out
}

func (s *Server) handlePutDevice() func(*gin.Context, *hotzone.Key) {
	return func(c *gin.Context, k *hotzone.Key) {
		id := c.Param("device_id")
		buf := bodyBufs.Get().(*[]byte)
		defer bodyBufs.Put(buf)
		body, err := readBodyInto(c, limitDefault, (*buf)[:0])
		if err != nil {
			s.fail(c, err)
			return
		}
		*buf = body[:0]
		req, err := decodeDeviceBody(body)
		if err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		if !validDeviceID(id) {
			errs.add("device_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
		}
		d := hotzone.Device{ID: id, BrandID: k.BrandID, Timezone: "UTC"}
		switch {
		case !req.Platform.ok:
			errs.add("platform", "required")
		case req.Platform.v == "ios" || req.Platform.v == "android":
			d.Platform = hotzone.Platform(req.Platform.v)
		default:
			errs.add("platform", `must be "ios" or "android"`)
		}
		if !req.OptIn.ok {
			errs.add("opt_in", "required")
		} else {
			d.OptIn = req.OptIn.v
		}
		if req.Timezone.ok {
			if _, err := s.location(req.Timezone.v); err != nil {
				errs.add("timezone", "must be an IANA time zone name such as Europe/Berlin")
			}
			d.Timezone = req.Timezone.v
		}
		if req.Locale.ok {
			if !validLocale(req.Locale.v) {
				errs.add("locale", "must be a language tag such as de-CH")
			}
			d.Locale = req.Locale.v
		}
		if req.Push == '{' {
			d.Provider, d.Token = checkPush(&errs, req.Provider, req.Token, d.Platform)
		}
		d.Tags = checkTags(&errs, "tags", req.Tags)
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		d, created, err := s.db.PutDevice(c, d)
		if err != nil {
			s.fail(c, err)
			return
		}
		status := putStatus(created)
		out := appendDevice((*buf)[:0], &d)
		*buf = out[:0]
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Writer.WriteHeader(status)
		_, _ = c.Writer.Write(out)
	}
}

// validFCMToken is fcmToken's rule and length without the regular
// expression (FuzzValidFCMToken holds the two alike).
func validFCMToken(t string) bool {
	if len(t) == 0 || len(t) > 4096 {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// bodyBufs are request bodies' and answers' buffers, reused.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// checkPush validates a token against its provider's format, so nothing
// odd ever reaches a provider URL (an APNs token becomes a path segment).
func checkPush(errs *fieldErrors, provider, token optString, platform hotzone.Platform) (hotzone.Provider, string) {
	if !provider.ok {
		errs.add("push.provider", "required")
	}
	if !token.ok {
		errs.add("push.token", "required")
	}
	if !provider.ok || !token.ok {
		return "", ""
	}
	switch provider.v {
	case "apns":
		if platform == hotzone.PlatformAndroid {
			errs.add("push.provider", "an android device has no APNs token")
		}
		if !apnsToken.MatchString(token.v) {
			errs.add("push.token", "an APNs token is an even number (64 to 200) of hex digits")
		}
		// Tokens are hex; one case keeps "one token, one device" exact.
		return hotzone.ProviderAPNs, strings.ToLower(token.v)
	case "fcm":
		if !validFCMToken(token.v) {
			errs.add("push.token", "an FCM token is 1 to 4096 characters of A-Z a-z 0-9 _ : -")
		}
		return hotzone.ProviderFCM, token.v
	}
	errs.add("push.provider", `must be "apns" or "fcm"`)
	return "", ""
}

func (s *Server) handleDeleteDevice() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		id := c.Param("device_id")
		if err := s.engine.DeleteDevice(c, k.BrandID, id); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// validLocale is localePattern's match without the regular expression,
// which took a registration more than its other field checks: 2 to 8
// letters, then up to 5 subtags of 1 to 8 letters or digits, each after
// a '-' or '_'.
func validLocale(s string) bool {
	i := 0
	for i < len(s) && isLetter(s[i]) {
		i++
	}
	if i < 2 || i > 8 {
		return false
	}
	for subtags := 0; i < len(s); subtags++ {
		if subtags == 5 || (s[i] != '-' && s[i] != '_') {
			return false
		}
		i++
		start := i
		for i < len(s) && (isLetter(s[i]) || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		if n := i - start; n < 1 || n > 8 {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// checkTags validates a device's tags: at most hotzone.MaxDeviceTags,
// each a valid tag, none twice. Absent is none: a registration is whole.
func checkTags(errs *fieldErrors, field string, tags []string) []string {
	if len(tags) > hotzone.MaxDeviceTags {
		errs.add(field, "must have at most "+strconv.Itoa(hotzone.MaxDeviceTags)+" tags")
		return nil
	}
	for i, t := range tags {
		f := field + "[" + strconv.Itoa(i) + "]"
		switch {
		case !hotzone.ValidTag(t):
			errs.add(f, "must be 1 to 64 characters of a-z 0-9 : _ -")
		case slices.Contains(tags[:i], t):
			errs.add(f, "is listed twice")
		}
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// deviceDataJSON is what is stored about a device, for an admin
// answering its user's request to see their data: the registration as
// PUT answers it, the last position and the device's log entries.
type deviceDataJSON struct {
	positionedDeviceJSON
	Notifications []notificationJSON `json:"notifications"`
}

// positionedDeviceJSON is a device as PUT answers it and its last
// position (null when it never pinged): a device's data and an export's
// device line.
type positionedDeviceJSON struct {
	deviceJSON
	LastPosition *positionJSON `json:"last_position"`
}

func toPositionedDeviceJSON(d hotzone.Device, pos *hotzone.DevicePosition) positionedDeviceJSON {
	out := positionedDeviceJSON{deviceJSON: toDeviceJSON(d)}
	if pos != nil {
		p := pos.Last
		out.LastPosition = &positionJSON{Lat: p.Lat, Lon: p.Lon, AccuracyM: p.AccuracyM, TS: p.TS.UTC()}
	}
	return out
}

type positionJSON struct {
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	AccuracyM float64   `json:"accuracy_m"`
	TS        time.Time `json:"ts"`
}

// deviceDataEntries is how many log entries a device's data answer
// carries, newest first.
const deviceDataEntries = 100

func (s *Server) handleGetDevice() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		d, pos, err := s.db.Device(c, k.BrandID, c.Param("device_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		ns, _, err := s.db.Notifications(c, k.BrandID, hotzone.NotificationQuery{DeviceID: d.ID, Limit: deviceDataEntries})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := deviceDataJSON{positionedDeviceJSON: toPositionedDeviceJSON(d, pos), Notifications: make([]notificationJSON, len(ns))}
		for i, n := range ns {
			out.Notifications[i] = toNotificationJSON(n)
		}
		ok(c, http.StatusOK, out)
	}
}
