package pushtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The APNs fake speaks HTTP/2 through its own small server rather than
// net/http's: net/http spends a goroutine, a request, a response writer
// and a body pipe on every stream, and in a throughput benchmark that
// shares two cores with the client under test it took a third of the
// CPU. This one reads the frames of a connection in one loop, answers
// each request inline from that loop and writes the answers in batches.
// It implements what APNs clients use: TLS with ALPN h2, SETTINGS,
// HEADERS (with CONTINUATION, through the framer), DATA with flow
// control both ways, PING, RST_STREAM and GOAWAY.

// h2Request is one request as the fake's handler sees it.
type h2Request struct {
	method, path string // path without the query
	header       http.Header
	body         []byte // at most maxBody bytes of the body
	bodyLen      int    // the body's full length
}

// h2Reply is the handler's answer: a response, or Drop (reset the
// stream) or CloseConn (close the connection).
type h2Reply struct {
	status          int
	header          []hpack.HeaderField // lower-case names
	body            []byte
	drop, closeConn bool
}

// maxBody is the most of a request body the server keeps: the largest
// payload Apple accepts plus one byte, enough to tell "too large".
const maxBody = APNsMaxVoIPPayload + 1

// h2Server is a TLS listener on 127.0.0.1 serving handler over HTTP/2.
type h2Server struct {
	ln      net.Listener
	tls     *tls.Config
	cert    *x509.Certificate
	handler func(*h2Request) h2Reply
	accepts atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newH2Server starts serving on a fresh port of 127.0.0.1.
func newH2Server(handler func(*h2Request) h2Reply) (*h2Server, error) {
	cert, leaf, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &h2Server{
		ln:      ln,
		tls:     &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{http2.NextProtoTLS}, MinVersion: tls.VersionTLS12},
		cert:    leaf,
		handler: handler,
		conns:   map[net.Conn]struct{}{},
	}
	s.wg.Go(s.accept)
	return s, nil
}

// selfSigned makes the fake's certificate: P-256, for 127.0.0.1 and
// localhost, usable as its own root (tests trust it with a pool or a CA
// file holding just this certificate).
func selfSigned() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"hotzone pushtest"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

// URL is https://127.0.0.1:port.
func (s *h2Server) URL() string { return "https://" + s.ln.Addr().String() }

func (s *h2Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.accepts.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(c)
		}()
	}
}

// Close stops accepting, closes every connection and waits for their
// loops to end.
func (s *h2Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// pendingData is a response body waiting for flow-control window.
type pendingData struct {
	id   uint32
	body []byte
}

// h2Conn is one connection's state; only its loop touches it.
type h2Conn struct {
	fr      *http2.Framer
	bw      *batchWriter
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	streams map[uint32]*h2Request // requests whose body is still arriving
	lastID  uint32

	// Flow control of what the fake sends: the connection's window, the
	// peer's initial stream window and each open stream's increments.
	sendWindow    int64
	initialWindow int64
	streamExtra   map[uint32]int64
	pending       []pendingData
	maxFrame      uint32
}

// Flow-control windows the fake grants: request bodies never wait.
const (
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 1 << 30
)

func (s *h2Server) serveConn(nc net.Conn) {
	tc := tls.Server(nc, s.tls)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return
	}
	_ = tc.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
		return // Apple speaks only HTTP/2
	}
	br := bufio.NewReaderSize(tc, 64<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	out := newBatchWriter(tc)
	defer out.close()
	c := &h2Conn{
		bw:            out,
		streams:       map[uint32]*h2Request{},
		sendWindow:    65535,
		initialWindow: 65535,
		streamExtra:   map[uint32]int64{},
		maxFrame:      16384,
	}
	c.fr = http2.NewFramer(c.bw, br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 64 << 10
	c.henc = hpack.NewEncoder(&c.hbuf)
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: APNsMaxConcurrentStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
	)
	_ = c.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	if c.bw.Flush() != nil {
		return
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				delete(c.streams, se.StreamID)
				_ = c.fr.WriteRSTStream(se.StreamID, se.Code)
				if c.bw.Flush() != nil {
					return
				}
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				_ = c.fr.WriteGoAway(c.lastID, http2.ErrCode(ce), nil)
				_ = c.bw.Flush()
			}
			return
		}
		if !s.handleFrame(c, f) {
			_ = c.bw.Flush()
			return
		}
		if c.bw.Flush() != nil {
			return
		}
	}
}

// handleFrame acts on one frame; false ends the connection.
func (s *h2Server) handleFrame(c *h2Conn, f http2.Frame) bool {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return true
		}
		err := f.ForeachSetting(func(st http2.Setting) error {
			switch st.ID {
			case http2.SettingInitialWindowSize:
				c.initialWindow = int64(st.Val)
			case http2.SettingMaxFrameSize:
				c.maxFrame = st.Val
			case http2.SettingHeaderTableSize:
				c.henc.SetMaxDynamicTableSizeLimit(st.Val)
			}
			return nil
		})
		if err != nil {
			return false
		}
		_ = c.fr.WriteSettingsAck()
		s.sendPending(c)
	case *http2.MetaHeadersFrame:
		id := f.StreamID
		if id%2 == 0 || id <= c.lastID {
			// Trailers or a reused id: nothing APNs clients send.
			_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeProtocol, nil)
			return false
		}
		c.lastID = id
		req := &h2Request{header: make(http.Header, len(f.Fields))}
		for _, hf := range f.Fields {
			switch hf.Name {
			case ":method":
				req.method = hf.Value
			case ":path":
				req.path, _, _ = strings.Cut(hf.Value, "?")
			default:
				if !hf.IsPseudo() {
					k := canonicalKey(hf.Name)
					req.header[k] = append(req.header[k], hf.Value)
				}
			}
		}
		if f.StreamEnded() {
			return s.respond(c, id, req)
		}
		c.streams[id] = req
	case *http2.DataFrame:
		if n := f.Length; n > 0 {
			// Give back at once what the frame used: bodies never wait.
			_ = c.fr.WriteWindowUpdate(0, n)
			if !f.StreamEnded() {
				_ = c.fr.WriteWindowUpdate(f.StreamID, n)
			}
		}
		req := c.streams[f.StreamID]
		if req == nil {
			return true // reset by the client meanwhile
		}
		data := f.Data()
		req.bodyLen += len(data)
		if room := maxBody - len(req.body); room > 0 {
			req.body = append(req.body, data[:min(room, len(data))]...)
		}
		if f.StreamEnded() {
			delete(c.streams, f.StreamID)
			return s.respond(c, f.StreamID, req)
		}
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			c.sendWindow += int64(f.Increment)
		} else if c.waiting(f.StreamID) {
			c.streamExtra[f.StreamID] += int64(f.Increment)
		}
		s.sendPending(c)
	case *http2.PingFrame:
		if !f.IsAck() {
			_ = c.fr.WritePing(true, f.Data)
		}
	case *http2.RSTStreamFrame:
		delete(c.streams, f.StreamID)
	case *http2.GoAwayFrame:
		return false
	}
	return true
}

// respond runs the handler and writes its answer; false ends the
// connection.
func (s *h2Server) respond(c *h2Conn, id uint32, req *h2Request) bool {
	rep := s.handler(req)
	switch {
	case rep.closeConn:
		return false
	case rep.drop:
		// What net/http does with an aborted handler: reset the stream.
		_ = c.fr.WriteRSTStream(id, http2.ErrCodeInternal)
		return true
	}
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(rep.status)})
	for _, hf := range rep.header {
		_ = c.henc.WriteField(hf)
	}
	if len(rep.body) > 0 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(rep.body))})
	}
	block := c.hbuf.Bytes()
	first := min(len(block), int(c.maxFrame))
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:first], EndStream: len(rep.body) == 0, EndHeaders: first == len(block)})
	for rest := block[first:]; len(rest) > 0; {
		n := min(len(rest), int(c.maxFrame))
		_ = c.fr.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	if len(rep.body) > 0 {
		c.pending = append(c.pending, pendingData{id: id, body: rep.body})
		s.sendPending(c)
	}
	return true
}

// sendPending writes the waiting response bodies the windows allow, in
// order; a body is sent whole, in frames of at most the peer's size.
func (s *h2Server) sendPending(c *h2Conn) {
	for len(c.pending) > 0 {
		p := c.pending[0]
		n := int64(len(p.body))
		if n > c.sendWindow || n > c.initialWindow+c.streamExtra[p.id] {
			return
		}
		c.sendWindow -= n
		delete(c.streamExtra, p.id)
		for b := p.body; ; {
			k := min(len(b), int(c.maxFrame))
			_ = c.fr.WriteData(p.id, k == len(b), b[:k])
			if b = b[k:]; len(b) == 0 {
				break
			}
		}
		c.pending = c.pending[1:]
	}
}

// waiting reports whether a response body of stream id waits for window.
func (c *h2Conn) waiting(id uint32) bool {
	for _, p := range c.pending {
		if p.id == id {
			return true
		}
	}
	return false
}

// batchWriter hands what the connection's loop writes to a goroutine of
// its own, which writes whatever has gathered since its last write in
// one go: while one write is in the kernel the next answers pile up, so
// a busy connection answers many requests per write, as net/http's
// server does, and the loop never waits on the socket.
type batchWriter struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	err  error
	kick chan struct{}
	done chan struct{}
}

func newBatchWriter(w io.Writer) *batchWriter {
	b := &batchWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b
}

// Write queues p; it fails only once an earlier write failed.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush wakes the writer; it reports an earlier write's failure.
func (b *batchWriter) Flush() error {
	b.mu.Lock()
	err, pending := b.err, len(b.buf) > 0
	b.mu.Unlock()
	if pending {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return err
}

func (b *batchWriter) loop() {
	defer close(b.done)
	var spare []byte
	for range b.kick {
		b.mu.Lock()
		out := b.buf
		if len(out) == 0 {
			b.mu.Unlock()
			continue
		}
		// Two buffers take turns: the loop fills one while this
		// goroutine writes the other.
		b.buf = spare[:0]
		b.mu.Unlock()
		if _, err := b.w.Write(out); err != nil {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			// Keep draining kicks until close, writing nothing.
		}
		spare = out
	}
}

// close writes what is queued and stops the writer; the connection's
// loop calls it once, when it ends.
func (b *batchWriter) close() {
	_ = b.Flush()
	close(b.kick)
	<-b.done
}

// knownKeys maps the header names APNs clients send to their canonical
// form, which http.CanonicalHeaderKey would allocate anew per request.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"authorization", "apns-topic", "apns-id", "apns-push-type", "apns-priority",
		"apns-expiration", "apns-collapse-id", "content-type", "content-length", "user-agent", "accept-encoding"} {
		m[k] = http.CanonicalHeaderKey(k)
	}
	return m
}()

func canonicalKey(name string) string {
	if k, ok := knownKeys[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}
