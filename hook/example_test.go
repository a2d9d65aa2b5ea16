package hook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/hotzone/hotzone/hook"
)

// A receiver: read the raw body, verify it, dedupe on the delivery id,
// answer 2xx quickly.
func ExampleVerify() {
	secret := []byte("whsec_8hO6b1oKdWcpA2l9QZ0f3Yx7uT4sRqPnMmLkJiHgFeD")
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // a real receiver keeps this in its database
	)
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The raw bytes, before any JSON decoding: re-encoded JSON is not
		// what was signed.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = hook.Verify(r.Header.Get(hook.SignatureHeader), body, secret, time.Now(), hook.DefaultTolerance)
		if errors.Is(err, hook.ErrSignatureExpired) {
			http.Error(w, "stale request", http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var d struct{ ID, Type string }
		if err := json.Unmarshal(body, &d); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		mu.Lock()
		dup := seen[d.ID]
		seen[d.ID] = true
		mu.Unlock()
		if !dup {
			fmt.Println("handling", d.Type, d.ID)
		}
		w.WriteHeader(http.StatusNoContent)
	})

	deliver := func(body []byte, at time.Time) int {
		req := httptest.NewRequest(http.MethodPost, "/hotzone", bytes.NewReader(body))
		req.Header.Set(hook.SignatureHeader, hook.Sign(secret, at, body))
		w := httptest.NewRecorder()
		receiver.ServeHTTP(w, req)
		return w.Code
	}
	body := []byte(`{"id":"dlv_1","type":"entered","created_at":"2026-01-01T00:00:00Z","data":{}}`)
	fmt.Println(deliver(body, time.Now()))
	fmt.Println(deliver(body, time.Now()))                      // a retry: acknowledged, not handled again
	fmt.Println(deliver(body, time.Now().Add(-10*time.Minute))) // a replay
	tampered := bytes.Replace(body, []byte("entered"), []byte("exited"), 1)
	req := httptest.NewRequest(http.MethodPost, "/hotzone", bytes.NewReader(tampered))
	req.Header.Set(hook.SignatureHeader, hook.Sign(secret, time.Now(), body))
	w := httptest.NewRecorder()
	receiver.ServeHTTP(w, req)
	fmt.Println(w.Code) // a forgery
	// Output:
	// handling entered dlv_1
	// 204
	// 204
	// 401
	// 401
}
