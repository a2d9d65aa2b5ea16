package api

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"

	"github.com/hotzone/hotzone"
)

// exportLine is one line of an export: what it holds, and the object as
// the API answers it.
type exportLine struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// exportPage is how many objects an export reads at a time.
const exportPage = 1000

// ExportBrand writes a brand's data as JSON Lines, for backups and
// audits: the brand, its policy, its stores, its events (with their
// counts), its devices (with their last position) and its delivery log
// (newest first), each line {"type", "data"} with data as the API
// answers it. Keys, push credentials and webhook secrets are never
// written. It answers how many lines of each type it wrote.
func ExportBrand(ctx context.Context, db hotzone.Storage, brandID string, w io.Writer) (map[string]int, error) {
	bw := bufio.NewWriter(w)
	counts := map[string]int{}
	put := func(typ string, v any) error {
		b, err := json.Marshal(exportLine{Type: typ, Data: v})
		if err != nil {
			return err
		}
		counts[typ]++
		_, err = bw.Write(append(b, '\n'))
		return err
	}
	brand, err := db.Brand(ctx, brandID)
	if err != nil {
		return nil, fmt.Errorf("brand %s: %w", brandID, err)
	}
	if err := put("brand", brand); err != nil {
		return nil, err
	}
	policy, err := db.Policy(ctx, brandID)
	if err != nil {
		return nil, err
	}
	if err := put("policy", policy); err != nil {
		return nil, err
	}
	for after := ""; ; {
		sts, more, err := db.Stores(ctx, brandID, hotzone.StoreQuery{After: after, Limit: exportPage})
		if err != nil {
			return nil, fmt.Errorf("stores: %w", err)
		}
		for _, st := range sts {
			if err := put("store", toStoreJSON(st)); err != nil {
				return nil, err
			}
		}
		if !more || len(sts) == 0 {
			break
		}
		after = sts[len(sts)-1].ID
	}
	for before := ""; ; {
		evs, more, err := db.Events(ctx, brandID, hotzone.EventQuery{Before: before, Limit: exportPage})
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		for _, ec := range evs {
			if err := put("event", toEventJSON(ec.Event, ec.Counts)); err != nil {
				return nil, err
			}
		}
		if !more || len(evs) == 0 {
			break
		}
		before = evs[len(evs)-1].Event.ID
	}
	ids, err := db.DeviceIDs(ctx, brandID)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	for _, id := range ids {
		d, pos, err := db.Device(ctx, brandID, id)
		if err != nil {
			continue // erased since it was listed
		}
		// As GET /v1/devices/{id} answers it, without its log entries:
		// they are lines of their own.
		if err := put("device", toPositionedDeviceJSON(d, pos)); err != nil {
			return nil, err
		}
	}
	for before := ""; ; {
		ns, more, err := db.Notifications(ctx, brandID, hotzone.NotificationQuery{Before: before, Limit: exportPage})
		if err != nil {
			return nil, fmt.Errorf("delivery log: %w", err)
		}
		for _, n := range ns {
			if err := put("notification", toNotificationJSON(n)); err != nil {
				return nil, err
			}
		}
		if !more || len(ns) == 0 {
			break
		}
		before = ns[len(ns)-1].ID
	}
	return counts, bw.Flush()
}
