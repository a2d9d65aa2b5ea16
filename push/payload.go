package push

import (
	"bytes"
	"encoding/json"
	"sync"

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
// event_id, store_id and url as custom data.
func APNsPayload(ev hotzone.Event, variant string) []byte {
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
	n := len(APNsPayload(ev, variant))
	return n, n <= MaxPayloadBytes
}

// payloads caches each event's rendered APNs payloads, by variant: an event's content
// never changes once started, and a fan-out renders it once per device
// otherwise.
var payloads = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

// cachedAPNsPayload is APNsPayload through the cache.
func cachedAPNsPayload(ev hotzone.Event, variant string) []byte {
	k := ev.ID + "\x00" + variant
	payloads.Lock()
	defer payloads.Unlock()
	if p, ok := payloads.m[k]; ok {
		return p
	}
	if len(payloads.m) >= 1024 {
		clear(payloads.m) // old events are over; start afresh
	}
	p := APNsPayload(ev, variant)
	payloads.m[k] = p
	return p
}
