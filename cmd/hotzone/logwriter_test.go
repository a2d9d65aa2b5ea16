package main

import (
	"context"
	"strings"
	"sync"
	"testing"
)

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogWriter: lines gather until a flush; a line written now goes out
// at once, after every line gathered before it; a full buffer and the
// end of Run flush.
func TestLogWriter(t *testing.T) {
	var out lockedBuilder
	w := newLogWriter(&out)
	w.Write([]byte("a\n"))
	w.Write([]byte("b\n"))
	if out.String() != "" {
		t.Fatalf("written before a flush: %q", out.String())
	}
	w.now().Write([]byte("ERROR\n"))
	if out.String() != "a\nb\nERROR\n" {
		t.Fatalf("after a line written now: %q", out.String())
	}
	big := strings.Repeat("x", logBufferMax)
	w.Write([]byte(big))
	if !strings.HasSuffix(out.String(), big) {
		t.Fatal("a full buffer was not written")
	}
	w.Write([]byte("last\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Run(ctx)
	if !strings.HasSuffix(out.String(), "last\n") {
		t.Fatal("Run's end did not flush")
	}
}
