package main

import (
	"context"
	"io"
	"sync"
	"time"
)

// logWriter collects log lines and writes them in one write(2) every
// logFlushEvery (or once logBufferMax gathered): the request log writes a
// line per request, and at tens of thousands of requests a second a
// system call per line cost more than the line. WriteNow writes at once,
// with everything gathered before it: errors and warnings are not held
// back. A crash loses at most logFlushEvery of request lines.
type logWriter struct {
	out io.Writer

	mu  sync.Mutex // guards buf
	buf []byte

	wmu   sync.Mutex // one write to out at a time, in order
	spare []byte
}

const (
	logFlushEvery = 100 * time.Millisecond
	logBufferMax  = 64 << 10
)

func newLogWriter(out io.Writer) *logWriter { return &logWriter{out: out} }

// Write gathers p; it never fails (a failing out is noticed by Flush).
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= logBufferMax
	w.mu.Unlock()
	if full {
		_ = w.Flush()
	}
	return len(p), nil
}

// WriteNow writes what gathered and p at once.
func (w *logWriter) WriteNow(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	return len(p), w.Flush()
}

// Flush writes what gathered.
func (w *logWriter) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	if len(b) == 0 {
		w.spare = b
		return nil
	}
	_, err := w.out.Write(b)
	w.spare = b[:0]
	return err
}

// Run flushes every logFlushEvery until ctx ends, then once more.
func (w *logWriter) Run(ctx context.Context) {
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = w.Flush()
			return
		case <-t.C:
			_ = w.Flush()
		}
	}
}

// now is the writer that writes at once, for slog's handler.
func (w *logWriter) now() io.Writer { return writeNow{w} }

type writeNow struct{ w *logWriter }

func (n writeNow) Write(p []byte) (int, error) { return n.w.WriteNow(p) }
