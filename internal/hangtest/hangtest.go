// Package hangtest is the test helper for dependencies that hang: a
// listener on the loopback that accepts connections and never answers (a
// port where something else listens, a firewall that accepts and drops),
// and a proxy to a real server that can be made to hang like that, in the
// middle of a conversation too, and to come back.
package hangtest

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a server while it is up. While hung,
// it accepts new connections and says nothing on them, and what arrives on
// the connections already open goes nowhere, either way. It stops when
// the test ends.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	hung  bool
	conns map[net.Conn]bool
}

// BlackHole returns the address of a listener that accepts connections
// and never answers.
func BlackHole(t testing.TB) string {
	t.Helper()
	p := Start(t, "")
	p.Hang()
	return p.Addr()
}

// Start starts a proxy to target (host:port), up.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for c := range p.conns {
			c.Close()
		}
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Hang makes the proxy hang, the connections it has open included.
func (p *Proxy) Hang() {
	p.mu.Lock()
	p.hung = true
	p.mu.Unlock()
}

// Resume makes the proxy forward new connections again. The connections
// that hung stay hung: their clients must give up on them.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.hung = false
	p.mu.Unlock()
}

func (p *Proxy) isHung() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hung
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		hung := p.hung || p.target == ""
		p.mu.Unlock()
		if hung {
			go drain(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[up] = true
		p.mu.Unlock()
		var once sync.Once
		frozen := make(chan struct{})
		freeze := func() { once.Do(func() { close(frozen) }) }
		go p.pipe(up, c, frozen, freeze)
		go p.pipe(c, up, frozen, freeze)
	}
}

// pipe copies from src to dst until either ends, or the proxy hangs: then
// it reads on and drops what it reads, as a peer that says nothing.
func (p *Proxy) pipe(dst, src net.Conn, frozen chan struct{}, freeze func()) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.isHung() {
			freeze()
		}
		select {
		case <-frozen:
			drain(src)
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// drain reads and drops what c receives until it closes.
func drain(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return
		}
	}
}
