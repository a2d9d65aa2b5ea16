package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

// openRequest is the app's report of a tap on a notification.
type openRequest struct {
	DeviceID *string `json:"device_id"`
}

// handleOpen records that the app's user tapped a notification: 204
// every time (the first report counts), 404 unless the notification is
// that device's, of the key's brand.
func (s *Server) handleOpen() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		var req openRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		if req.DeviceID == nil {
			s.fail(c, hotzone.Invalid("device_id", "required"))
			return
		}
		if !validDeviceID(*req.DeviceID) {
			s.fail(c, hotzone.Invalid("device_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"))
			return
		}
		_, err := s.db.Open(c, k.BrandID, c.Param("notification_id"), *req.DeviceID, s.now())
		if errors.Is(err, hotzone.ErrNotFound) {
			s.fail(c, newHTTPError(http.StatusNotFound, "no such notification of that device"))
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// handleEventReport answers what an event brought in, tallied from its
// log entries (a manager only for its own store's events).
func (s *Server) handleEventReport() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		ev, _, err := s.db.Event(c, k.BrandID, c.Param("event_id"))
		if errors.Is(err, hotzone.ErrNotFound) {
			s.fail(c, newHTTPError(http.StatusNotFound, "no such event"))
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		if k.Kind == hotzone.KindManager && k.StoreID != ev.StoreID {
			s.fail(c, hotzone.ErrForbidden)
			return
		}
		r := hotzone.Report{EventID: ev.ID, AttributionS: int(ev.Attribution() / time.Second)}
		if err := s.db.EventLog(c, k.BrandID, ev.ID, func(n *hotzone.Notification) error {
			r.Tally(n)
			return nil
		}); err != nil {
			s.fail(c, err)
			return
		}
		r.Finish()
		ok(c, http.StatusOK, r)
	}
}
