package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt"
)

// TestReadinessAndSIGTERMUnderLoad: /readyz turns 503 on SIGTERM while
// the server still answers; pings keep coming until the listener closes;
// after the process exits, every accepted ping's position and every
// queued notification is in the database.
func TestReadinessAndSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	dir := t.TempDir()
	env := []string{"HOTZONE_OPERATOR_KEY=hzo_sigterm"}
	c := startChild(t, env, "--data", dir, "--shutdown-delay", "700ms", "--device-ping-rate", "0", "--flush-interval", "10s")
	for i := 0; ; i++ {
		if code, _ := httpCall(t, "GET", c.base+"/readyz", "", ""); code == 200 {
			break
		}
		if i > 300 {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, brand := httpCall(t, "POST", c.base+"/v1/brands", "hzo_sigterm", `{"name":"S"}`)
	admin, app, brandID := brand["admin_key"].(string), brand["app_key"].(string), brand["id"].(string)
	httpCall(t, "PATCH", c.base+"/v1/policy", admin, `{"quiet_hours":null,"min_interval_s":0,"daily_cap":0}`)
	httpCall(t, "PUT", c.base+"/v1/stores/s", admin, `{"name":"S","fence":{"circle":{"lat":10,"lon":10,"radius_m":5000}}}`)
	const devices = 20
	for i := range devices {
		httpCall(t, "PUT", fmt.Sprintf("%s/v1/devices/d%d", c.base, i), app, fmt.Sprintf(`{"platform":"android","opt_in":true,"push":{"provider":"fcm","token":"t%d"}}`, i))
	}
	if code, _ := httpCall(t, "POST", c.base+"/v1/stores/s/events", admin, `{"title":"Hot","body":"Now"}`); code != 201 {
		t.Fatal("event did not start")
	}

	// Load: each device pings in turn with a rising latitude; what was
	// answered 200 is recorded. Bounded by count and by the server going
	// away.
	var (
		mu       sync.Mutex
		accepted = map[int]float64{} // device -> last accepted lat
		sentMax  = map[int]float64{} // device -> last lat sent
		queued   = map[int]bool{}
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for d := range devices {
		wg.Go(func() {
			for n := 1; n <= 5000 && ctx.Err() == nil; n++ {
				lat := 10 + float64(n)*1e-6
				body := fmt.Sprintf(`{"device_id":"d%d","lat":%v,"lon":10,"accuracy_m":5}`, d, lat)
				req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/pings", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+app)
				mu.Lock()
				sentMax[d] = lat
				mu.Unlock()
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					accepted[d] = lat
					if strings.Contains(string(b), `"status":"queued"`) {
						queued[d] = true
					}
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// During the delay: not ready, still alive and serving.
	for i := 0; ; i++ {
		code, _ := httpCall(t, "GET", c.base+"/readyz", "", "")
		if code == 503 {
			if hc, _ := httpCall(t, "GET", c.base+"/healthz", "", ""); hc != 200 {
				t.Errorf("/healthz = %d while draining, want 200", hc)
			}
			break
		}
		if i > 50 {
			t.Fatalf("/readyz still %d after SIGTERM", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v after SIGTERM, want a clean exit", err)
	}
	cancel()
	wg.Wait()

	db, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(accepted) == 0 {
		t.Fatal("no ping was accepted")
	}
	for d := range devices {
		_, pos, err := db.Device(context.Background(), brandID, fmt.Sprintf("d%d", d))
		if err != nil {
			t.Fatal(err)
		}
		want, ok := accepted[d]
		if !ok {
			continue
		}
		// Stored is the last accepted ping, or a later one the server
		// took but whose answer the client lost to the shutdown.
		if pos == nil || pos.Last.Lat < want || pos.Last.Lat > sentMax[d] {
			t.Errorf("device d%d: stored position %+v, want lat between %v (last answered 200) and %v (last sent)", d, pos, want, sentMax[d])
		}
	}
	ns, _, err := db.Notifications(context.Background(), brandID, hotzone.NotificationQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, n := range ns {
		logged[n.DeviceID] = true
	}
	for d := range queued {
		if !logged[fmt.Sprintf("d%d", d)] {
			t.Errorf("device d%d was answered queued but has no notification after shutdown", d)
		}
	}
	t.Logf("%d devices pinging; %d answered queued; all positions and notifications kept through SIGTERM", devices, len(queued))
}
