package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
)

// policyPatch is a partial policy; QuietHours is raw so that an explicit
// null (no quiet hours) differs from an absent member (unchanged).
type policyPatch struct {
	MinIntervalS *int           `json:"min_interval_s"`
	DailyCap     *int           `json:"daily_cap"`
	QuietHours   jsontext.Value `json:"quiet_hours"`
	MaxAccuracyM *float64       `json:"max_accuracy_m"`
	PresenceTTLS *int           `json:"presence_ttl_s"`
	MaxPingAgeS  *int           `json:"max_ping_age_s"`
	Trigger      *string        `json:"trigger"`
	DwellS       *int           `json:"dwell_s"`
	// MaxSpeedMPS is raw for the same reason: null turns the limit off.
	MaxSpeedMPS jsontext.Value `json:"max_speed_mps"`
	// HoldoutPct: events' default held-back share (0-50).
	HoldoutPct *int `json:"holdout_pct"`
	// AttributionS: how long after a decision a visit counts (an
	// extension; 300-604800, default 7200).
	AttributionS *int `json:"attribution_s"`
	// RetentionDays: how long history is kept (1-365, default 30).
	RetentionDays *int `json:"retention_days"`
}

type quietHoursJSON struct {
	Start *string `json:"start"`
	End   *string `json:"end"`
}

func (s *Server) handleGetPolicy() gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.db.Policy(c, keyOf(c).BrandID)
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, p)
	}
}

func (s *Server) handlePatchPolicy() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req policyPatch
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var qh *hotzone.QuietHours
		if len(req.QuietHours) > 0 && req.QuietHours.Kind() != 'n' {
			var q quietHoursJSON
			if err := decodeJSON(req.QuietHours, "quiet_hours", &q); err != nil {
				s.fail(c, err)
				return
			}
			var errs fieldErrors
			if q.Start == nil {
				errs.add("quiet_hours.start", "required")
			}
			if q.End == nil {
				errs.add("quiet_hours.end", "required")
			}
			if err := errs.err(); err != nil {
				s.fail(c, err)
				return
			}
			qh = &hotzone.QuietHours{Start: *q.Start, End: *q.End}
		}
		var speed *float64
		if len(req.MaxSpeedMPS) > 0 && req.MaxSpeedMPS.Kind() != 'n' {
			var v float64
			if err := decodeJSON(req.MaxSpeedMPS, "max_speed_mps", &v); err != nil {
				s.fail(c, err)
				return
			}
			speed = &v
		}
		p, err := s.db.UpdatePolicy(c, keyOf(c).BrandID, func(p *hotzone.Policy) error {
			set(&p.MinIntervalS, req.MinIntervalS)
			set(&p.DailyCap, req.DailyCap)
			set(&p.MaxAccuracyM, req.MaxAccuracyM)
			set(&p.PresenceTTLS, req.PresenceTTLS)
			set(&p.MaxPingAgeS, req.MaxPingAgeS)
			if len(req.QuietHours) > 0 {
				p.QuietHours = qh
			}
			if req.Trigger != nil {
				p.Trigger = hotzone.Trigger(*req.Trigger)
			}
			set(&p.DwellS, req.DwellS)
			set(&p.HoldoutPct, req.HoldoutPct)
			set(&p.AttributionS, req.AttributionS)
			set(&p.RetentionDays, req.RetentionDays)
			if len(req.MaxSpeedMPS) > 0 {
				p.MaxSpeedMPS = speed
			}
			if errs := p.Validate(); len(errs) > 0 {
				return &hotzone.ValidationError{Detail: "the policy is not valid", Errors: errs}
			}
			return nil
		})
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, p)
	}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
