package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone/hook"
)

// TestWebhooksSurviveCrash: deliveries queued, some of them out to a
// receiver that does not answer, when the server is killed with SIGKILL
// are all delivered once it runs again on the same data dir.
func TestWebhooksSurviveCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts real processes")
	}
	var (
		mu        sync.Mutex
		answering bool
		secret    string
		requests  int
		delivered = map[string]bool{}
	)
	hang := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests++
		ok, key := answering, secret
		mu.Unlock()
		if !ok {
			<-hang // out when the server dies
			return
		}
		if err := hook.Verify(r.Header.Get(hook.SignatureHeader), body, []byte(key), time.Now(), hook.DefaultTolerance); err != nil {
			t.Errorf("a delivery failed verification: %v", err)
			w.WriteHeader(400)
			return
		}
		var m struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		delivered[m.ID] = true
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer recv.Close()
	defer close(hang) // first: the hung handlers return, then Close

	dir := t.TempDir()
	env := []string{"HOTZONE_OPERATOR_KEY=hzo_hook-crash"}
	args := []string{"--data", dir, "--webhook-allow-private", "--device-ping-rate", "0"}
	c := startChild(t, env, args...)
	code, m := httpCall(t, "POST", c.base+"/v1/brands", "hzo_hook-crash", `{"name":"Hooks"}`)
	if code != 201 {
		t.Fatalf("create brand = %d %v", code, m)
	}
	admin, app := m["admin_key"].(string), m["app_key"].(string)
	if code, m := httpCall(t, "PUT", c.base+"/v1/stores/s", admin, `{"name":"S","fence":{"circle":{"lat":52.37,"lon":4.89,"radius_m":200}}}`); code != 201 {
		t.Fatalf("PUT store = %d %v", code, m)
	}
	code, m = httpCall(t, "POST", c.base+"/v1/webhooks", admin, `{"url":"`+recv.URL+`/hook","events":["entered"]}`)
	if code != 201 {
		t.Fatalf("POST /v1/webhooks = %d %v", code, m)
	}
	mu.Lock()
	secret = m["secret"].(string)
	mu.Unlock()
	const n = 20
	for i := range n {
		id := fmt.Sprintf("d%d", i)
		if code, m := httpCall(t, "PUT", c.base+"/v1/devices/"+id, app, `{"platform":"ios","opt_in":true}`); code != 201 {
			t.Fatalf("PUT %s = %d %v", id, code, m)
		}
		if code, m := httpCall(t, "POST", c.base+"/v1/pings", app, `{"device_id":"`+id+`","lat":52.37,"lon":4.89,"accuracy_m":10}`); code != 200 {
			t.Fatalf("ping %s = %d %v", id, code, m)
		}
	}
	// Some are out (and never answered), the rest wait behind the cap.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		r := requests
		mu.Unlock()
		if r >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver saw %d requests, want the first 4", r)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	mu.Lock()
	answering = true
	mu.Unlock()

	c = startChild(t, env, args...)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got := len(delivered)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart %d of %d entered deliveries arrived", got, n)
		}
	}
	code, m = httpCall(t, "GET", c.base+"/v1/webhooks", admin, "")
	items, _ := m["items"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("GET /v1/webhooks after the restart = %d %v", code, m)
	}
}
