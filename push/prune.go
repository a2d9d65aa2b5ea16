package push

import (
	"context"
	"time"

	"github.com/hotzone/hotzone"
)

// PruneEvery is how often RunPrune looks for history past its brands'
// retention.
const PruneEvery = time.Hour

// RunPrune prunes history past each brand's retention (Storage.Prune)
// now and every interval until ctx ends; a failure is reported and
// tried again at the next round.
func RunPrune(ctx context.Context, s hotzone.Storage, every time.Duration, report func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
