package api

import (
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
)

var (
	deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	apnsToken       = regexp.MustCompile(`^(?:[0-9A-Fa-f]{2}){32,100}$`)
	fcmToken        = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`) // and at most 4096 long
	localePattern   = regexp.MustCompile(`^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,5}$`)
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
}

type deviceJSON struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform"`
	Push      *pushOut  `json:"push"`
	OptIn     bool      `json:"opt_in"`
	Timezone  string    `json:"timezone"`
	Locale    *string   `json:"locale"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// pushOut never carries the token: an app key is public, and whoever
// holds it must not be able to read other devices' tokens back.
type pushOut struct {
	Provider string `json:"provider"`
}

func toDeviceJSON(d hotzone.Device) deviceJSON {
	out := deviceJSON{ID: d.ID, Platform: string(d.Platform), OptIn: d.OptIn, Timezone: d.Timezone, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.Token != "" {
		out.Push = &pushOut{Provider: string(d.Provider)}
	}
	if d.Locale != "" {
		l := d.Locale
		out.Locale = &l
	}
	return out
}

func (s *Server) handlePutDevice() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		id := c.Param("device_id")
		var req deviceRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		if !validID(deviceIDPattern, id) {
			errs.add("device_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
		}
		d := hotzone.Device{ID: id, BrandID: k.BrandID, Timezone: "UTC"}
		switch {
		case req.Platform == nil:
			errs.add("platform", "required")
		case *req.Platform == "ios" || *req.Platform == "android":
			d.Platform = hotzone.Platform(*req.Platform)
		default:
			errs.add("platform", `must be "ios" or "android"`)
		}
		if req.OptIn == nil {
			errs.add("opt_in", "required")
		} else {
			d.OptIn = *req.OptIn
		}
		if req.Timezone != nil {
			if _, err := s.location(*req.Timezone); err != nil {
				errs.add("timezone", "must be an IANA time zone name such as Europe/Berlin")
			}
			d.Timezone = *req.Timezone
		}
		if req.Locale != nil {
			if !localePattern.MatchString(*req.Locale) {
				errs.add("locale", "must be a language tag such as de-CH")
			}
			d.Locale = *req.Locale
		}
		if len(req.Push) > 0 && req.Push.Kind() != 'n' {
			var p pushJSON
			if err := decodeJSON(req.Push, "push", &p); err != nil {
				s.fail(c, err)
				return
			}
			d.Provider, d.Token = checkPush(&errs, p, d.Platform)
		}
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		d, created, err := s.db.PutDevice(c, d)
		if err != nil {
			s.fail(c, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		ok(c, status, toDeviceJSON(d))
	}
}

// checkPush validates a token against its provider's format, so nothing
// odd ever reaches a provider URL (an APNs token becomes a path segment).
func checkPush(errs *fieldErrors, p pushJSON, platform hotzone.Platform) (hotzone.Provider, string) {
	if p.Provider == nil {
		errs.add("push.provider", "required")
	}
	if p.Token == nil {
		errs.add("push.token", "required")
	}
	if p.Provider == nil || p.Token == nil {
		return "", ""
	}
	switch *p.Provider {
	case "apns":
		if platform == hotzone.PlatformAndroid {
			errs.add("push.provider", "an android device has no APNs token")
		}
		if !apnsToken.MatchString(*p.Token) {
			errs.add("push.token", "an APNs token is an even number (64 to 200) of hex digits")
		}
		// Tokens are hex; one case keeps "one token, one device" exact.
		return hotzone.ProviderAPNs, strings.ToLower(*p.Token)
	case "fcm":
		if len(*p.Token) > 4096 || !fcmToken.MatchString(*p.Token) {
			errs.add("push.token", "an FCM token is 1 to 4096 characters of A-Z a-z 0-9 _ : -")
		}
		return hotzone.ProviderFCM, *p.Token
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
