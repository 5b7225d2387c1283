package scproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// The relay is how the agent configures a proxy running in a container: a
// unix socket the agent listens on, in a directory bind-mounted into the
// proxy's container; the proxy connects. Both sides write Message lines
// (NDJSON, docs/service-connect.md "Relay protocol"):
//
//	agent -> proxy: config (at every connection, first), directory (the
//	                newest line of the task's namespace, then every change),
//	                stats, drain
//	proxy -> agent: applied (after each config; error when a listener
//	                could not bind), counters (answer to stats), drained
//	                (answer to drain)
//
// A proxy that loses the relay keeps serving with what it has and
// reconnects; the agent sends the whole state again.

// Message types.
const (
	MsgConfig    = "config"
	MsgDirectory = "directory"
	MsgStats     = "stats"
	MsgDrain     = "drain"
	MsgApplied   = "applied"
	MsgCounters  = "counters"
	MsgDrained   = "drained"
)

// RelaySocket is the relay's file name in its directory.
const RelaySocket = "relay.sock"

// Message is one relay line.
type Message struct {
	Type      string                     `json:"type"`
	Config    *serviceconnect.TaskConfig `json:"config,omitempty"`
	Directory *serviceconnect.Directory  `json:"directory,omitempty"`
	Traffic   *serviceconnect.Traffic    `json:"traffic,omitempty"`
	TimeoutMs int64                      `json:"timeoutMs,omitempty"`
	Error     string                     `json:"error,omitempty"`
}

// Relay is the agent's end for one task's proxy.
type Relay struct {
	log    *slog.Logger
	ln     net.Listener
	path   string
	onRdy  func()
	closed chan struct{}

	mu      sync.Mutex
	cfg     serviceconnect.TaskConfig
	dir     *serviceconnect.Directory
	conn    net.Conn
	enc     *json.Encoder
	ready   bool
	err     string
	replies chan Message // counters and drained of the current connection
	asking  sync.Mutex   // one stats or drain question at a time
}

// NewRelay listens on dir/relay.sock (dir is created; a stale socket is
// replaced). onReady is called whenever a proxy reports a configuration
// applied.
func NewRelay(dir string, cfg serviceconnect.TaskConfig, onReady func(), log *slog.Logger) (*Relay, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, RelaySocket)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	_ = os.Chmod(path, 0o666) // the proxy may run as any user
	r := &Relay{log: log, ln: ln, path: path, onRdy: onReady, cfg: cfg, closed: make(chan struct{})}
	go r.accept()
	return r, nil
}

// Ready reports whether the proxy has applied its configuration and, when
// it has client aliases, has their endpoints (a directory line), and the
// error it reported if it could not apply it.
func (r *Relay) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready && (len(r.cfg.Outbound) == 0 || r.dir != nil), r.err
}

// Connected reports whether a proxy is on the relay now.
func (r *Relay) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn != nil
}

func (r *Relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.conn != nil {
			r.conn.Close() // a restarted proxy replaces the old connection
		}
		r.conn = c
		r.enc = json.NewEncoder(deadlineWriter{c})
		replies := make(chan Message, 4)
		r.replies = replies
		// The directory first: the proxy's "applied" then means its
		// aliases have their endpoints too.
		if r.dir != nil {
			err = r.enc.Encode(Message{Type: MsgDirectory, Directory: r.dir})
		}
		cfg := r.cfg
		if err == nil {
			err = r.enc.Encode(Message{Type: MsgConfig, Config: &cfg})
		}
		r.mu.Unlock()
		if err != nil {
			c.Close()
			continue
		}
		go r.read(c, replies)
	}
}

func (r *Relay) read(c net.Conn, replies chan Message) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.log.Warn("service connect relay: malformed line from the proxy", "err", err)
			continue
		}
		switch m.Type {
		case MsgApplied:
			r.mu.Lock()
			r.ready, r.err = m.Error == "", m.Error
			r.mu.Unlock()
			if m.Error != "" {
				r.log.Warn("service connect proxy could not apply its configuration", "err", m.Error)
			}
			if r.onRdy != nil {
				r.onRdy()
			}
		case MsgCounters, MsgDrained:
			select {
			case replies <- m:
			default:
			}
		}
	}
	r.mu.Lock()
	if r.conn == c {
		r.conn, r.enc = nil, nil
	}
	r.mu.Unlock()
	c.Close()
}

// SetDirectory sends a directory line to the proxy (and to any proxy that
// connects later).
func (r *Relay) SetDirectory(d serviceconnect.Directory) {
	r.mu.Lock()
	first := r.dir == nil
	r.dir = &d
	if r.enc != nil {
		if err := r.enc.Encode(Message{Type: MsgDirectory, Directory: &d}); err != nil {
			r.conn.Close()
		}
	}
	ready := r.ready
	r.mu.Unlock()
	if first && ready && r.onRdy != nil {
		r.onRdy() // applied before the first directory: ready only now
	}
}

// ask sends a question and waits for its answer of type want.
func (r *Relay) ask(ctx context.Context, q Message, want string) (Message, error) {
	r.asking.Lock()
	defer r.asking.Unlock()
	r.mu.Lock()
	if r.enc == nil {
		r.mu.Unlock()
		return Message{}, errors.New("no proxy on the relay")
	}
	replies := r.replies
	for len(replies) > 0 { // answers to questions that timed out
		<-replies
	}
	err := r.enc.Encode(q)
	r.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	for {
		select {
		case m := <-replies:
			if m.Type == want {
				return m, nil
			}
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-r.closed:
			return Message{}, errors.New("relay closed")
		}
	}
}

// Counters asks the proxy for its traffic since the previous ask.
func (r *Relay) Counters(ctx context.Context) (serviceconnect.Traffic, error) {
	m, err := r.ask(ctx, Message{Type: MsgStats}, MsgCounters)
	if err != nil || m.Traffic == nil {
		return serviceconnect.Traffic{}, err
	}
	return *m.Traffic, nil
}

// Drain asks the proxy to drain its inbound listeners within timeout and
// waits for it (or ctx).
func (r *Relay) Drain(ctx context.Context, timeout time.Duration) error {
	m, err := r.ask(ctx, Message{Type: MsgDrain, TimeoutMs: timeout.Milliseconds()}, MsgDrained)
	if err != nil {
		return err
	}
	if m.Error != "" {
		return errors.New(m.Error)
	}
	return nil
}

// Close stops listening and drops the proxy's connection (the proxy keeps
// serving and reconnects to a new relay at the same path).
func (r *Relay) Close() {
	select {
	case <-r.closed:
		return
	default:
		close(r.closed)
	}
	r.ln.Close()
	r.mu.Lock()
	if r.conn != nil {
		r.conn.Close()
	}
	r.mu.Unlock()
}

// Run is the proxy process: it connects to the relay socket at path
// (retrying while it is absent), applies what the agent sends, answers its
// questions, and keeps serving through relay losses. It returns when ctx
// ends, after draining the inbound listeners for at most drain.
//
// trim, when not nil, is called after each configuration is applied and
// whenever the proxy has been idle (no connection opened, no request, no
// bytes relayed) for TrimIdle: the process gives back what it holds and no longer uses (RSS
// goal; the command passes a function that frees the heap's unused pages and
// the executable's pages from the page tables).
func Run(ctx context.Context, path string, drain time.Duration, log *slog.Logger, trim func()) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := New(Options{Log: log})
	defer p.Close()
	if trim != nil {
		p.trim = trim
		go trimWhenIdle(ctx, p, TrimIdle)
	}
	drained := false
	for ctx.Err() == nil {
		c, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		err = serveRelay(ctx, c, p, &drained, log)
		c.Close()
		if ctx.Err() == nil {
			log.Info("relay lost; serving on and reconnecting", "err", err)
		}
	}
	if !drained {
		dctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		_ = p.Drain(dctx)
	}
	return nil
}

func serveRelay(ctx context.Context, c net.Conn, p *Proxy, drained *bool, log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var wmu sync.Mutex
	enc := json.NewEncoder(deadlineWriter{c})
	send := func(m Message) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = enc.Encode(m)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("malformed relay line: %w", err)
		}
		switch m.Type {
		case MsgConfig:
			if m.Config == nil {
				continue
			}
			reply := Message{Type: MsgApplied}
			if *drained {
				send(reply) // draining: the listeners stay as they are
				continue
			}
			if err := p.Apply(*m.Config); err != nil {
				reply.Error = err.Error()
			}
			log.Info("configuration applied", "inbound", len(m.Config.Inbound), "outbound", len(m.Config.Outbound), "err", reply.Error)
			if p.trim != nil {
				p.trim()
			}
			send(reply)
		case MsgDirectory:
			if m.Directory != nil {
				p.SetDirectory(*m.Directory)
			}
		case MsgStats:
			t := p.Counters()
			send(Message{Type: MsgCounters, Traffic: &t})
		case MsgDrain:
			*drained = true
			d := time.Duration(m.TimeoutMs) * time.Millisecond
			go func() {
				dctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				reply := Message{Type: MsgDrained}
				if err := p.Drain(dctx); err != nil {
					reply.Error = err.Error()
				}
				log.Info("inbound drained", "err", reply.Error)
				send(reply)
			}()
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("relay closed by the agent")
}

// TrimIdle is how long the proxy must be idle before it trims itself.
const TrimIdle = 30 * time.Second

// trimWhenIdle closes the idle upstream connections and calls p.trim once
// per idle period: after a TrimIdle with no connection opened, request
// served or bytes relayed, unless it already did since the last activity.
func trimWhenIdle(ctx context.Context, p *Proxy, idle time.Duration) {
	t := time.NewTicker(idle / 8)
	defer t.Stop()
	last, since, trimmed := p.Activity(), time.Now(), true
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		if n := p.Activity(); n != last {
			last, since, trimmed = n, now, false
			continue
		}
		if !trimmed && now.Sub(since) >= idle {
			p.closeIdleUpstreams()
			p.trim()
			trimmed = true
		}
	}
}

// relayWriteTimeout bounds a write to the other end of the relay: a peer
// that stops reading is dropped (it reconnects and gets the whole state)
// rather than blocking the writer.
const relayWriteTimeout = 5 * time.Second

type deadlineWriter struct{ c net.Conn }

func (w deadlineWriter) Write(b []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(relayWriteTimeout))
	return w.c.Write(b)
}
