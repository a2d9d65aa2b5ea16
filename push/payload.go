package push

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
)

// MaxPayloadBytes is the providers' limit on a notification payload
// (APNs: 4096 bytes; FCM's data and notification together: 4000 bytes is
// what FCM documents for data, 4 KB overall).
const MaxPayloadBytes = 4096

type apnsAlert struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

type apnsAPS struct {
	Alert apnsAlert `json:"alert"`
	Sound string    `json:"sound"`
}

type apnsPayload struct {
	APS     apnsAPS `json:"aps"`
	EventID string  `json:"event_id"`
	StoreID string  `json:"store_id"`
	URL     *string `json:"url"`
}

// APNsPayload renders the event's notification as APNs sends it: the
// alert's title and body (of the variant: "" for the event's own), with
// event_id, store_id and url as custom data, and the notification's id
// (notification_id) so the app can report the tap.
func APNsPayload(ev hotzone.Event, variant, notificationID string) []byte {
	return withNotificationID(eventPayload(ev, variant), notificationID)
}

// withNotificationID appends the notification_id member to a rendered
// payload (an object): the rest of it is the same for every device of
// the event, and cached.
func withNotificationID(p []byte, id string) []byte {
	q, _ := json.Marshal(id) // a string: never fails
	out := make([]byte, 0, len(p)+len(q)+20)
	out = append(out, p[:len(p)-1]...)
	out = append(out, `,"notification_id":`...)
	out = append(out, q...)
	return append(out, '}')
}

// eventPayload is the APNs payload without the notification's id.
func eventPayload(ev hotzone.Event, variant string) []byte {
	title, body := ev.Text(variant)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML escaping would turn each < into six bytes of a payload whose
	// size is capped; the payload is never embedded in HTML.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(apnsPayload{
		APS:     apnsAPS{Alert: apnsAlert{Title: title, Body: body}, Sound: "default"},
		EventID: ev.ID, StoreID: ev.StoreID, URL: ev.URL,
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// PayloadFits tells whether the rendered payload of the event's variant
// fits the providers' limit, counted in bytes of JSON (escapes
// included), not characters.
func PayloadFits(ev hotzone.Event, variant string) (int, bool) {
	n := len(APNsPayload(ev, variant, idPlaceholder))
	return n, n <= MaxPayloadBytes
}

// idPlaceholder stands for a notification's id when a payload is sized:
// ids are all one length.
var idPlaceholder = strings.Repeat("0", len(hotzone.NewID(time.Unix(0, 0))))

// payloads caches each event's rendered APNs payloads, by variant: an event's content
// never changes once started, and a fan-out renders it once per device
// otherwise.
var payloads = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

// cachedAPNsPayload is APNsPayload with the event's part from the cache.
func cachedAPNsPayload(ev hotzone.Event, variant, notificationID string) []byte {
	k := ev.ID + "\x00" + variant
	payloads.Lock()
	p, ok := payloads.m[k]
	if !ok {
		if len(payloads.m) >= 1024 {
			clear(payloads.m) // old events are over; start afresh
		}
		p = eventPayload(ev, variant)
		payloads.m[k] = p
	}
	payloads.Unlock()
	return withNotificationID(p, notificationID)
}
