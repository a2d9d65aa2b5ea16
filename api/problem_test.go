package api

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

// TestUnavailableIs503: a storage backend that cannot answer (a cluster
// failing over) is a 503 with Retry-After, never a 500.
func TestUnavailableIs503(t *testing.T) {
	err := fmt.Errorf("redis: consider: %w", fmt.Errorf("%w: dial tcp: connection refused", hotzone.ErrUnavailable))
	p, ra := toProblem(err)
	if p.Status != 503 || ra != time.Second {
		t.Fatalf("toProblem(%v) = %d, retry after %v; want 503 after 1s", err, p.Status, ra)
	}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	writeProblem(c, nil, err)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("writeProblem = %d, Retry-After %q; want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
}
