package hotzone

import (
	"testing"
	"time"
)

// TestNotificationApply: a retry stays queued with its next attempt (in
// UTC) and the provider's error; a send clears the next attempt and
// notes when; each result is one attempt more.
func TestNotificationApply(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, paris)
	n := Notification{Status: StatusQueued}
	n.Apply(&Delivery{Status: StatusQueued, Error: "503", NextAttempt: at.Add(time.Minute), At: at})
	if n.Status != StatusQueued || n.Attempts != 1 || n.LastError == nil || *n.LastError != "503" ||
		!n.NextAttempt.Equal(at.Add(time.Minute)) || n.NextAttempt.Location() != time.UTC || n.SentAt != nil {
		t.Errorf("after a retry: %+v", n)
	}
	n.Apply(&Delivery{Status: StatusSent, ProviderID: "apns-1", At: at})
	if n.Status != StatusSent || n.Attempts != 2 || n.ProviderID != "apns-1" || !n.NextAttempt.IsZero() ||
		n.SentAt == nil || !n.SentAt.Equal(at) || n.SentAt.Location() != time.UTC || *n.LastError != "503" {
		t.Errorf("after a send: %+v", n)
	}
	f := Notification{Status: StatusQueued}
	f.Apply(&Delivery{Status: StatusFailed, Error: "400 BadDeviceToken", At: at})
	if f.Status != StatusFailed || f.SentAt != nil || !f.NextAttempt.IsZero() || f.LastError == nil {
		t.Errorf("after a failure: %+v", f)
	}
}
