package bolt

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// BenchmarkRegister measures durable registrations from 32 writers at
// once, as the harness's setup sends them.
func BenchmarkRegister(b *testing.B) {
	db, _ := openTest(b, time.Now)
	ctx := context.Background()
	br, _, _, err := db.CreateBrand(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				id := fmt.Sprintf("d-%d", i)
				d := hotzone.Device{ID: id, BrandID: br.ID, Platform: "ios", OptIn: true, Timezone: "America/New_York", Provider: "apns", Token: fmt.Sprintf("%064x", i)}
				if _, _, err := db.PutDevice(ctx, d); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reg/s")
}
