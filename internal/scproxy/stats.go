package scproxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// stats counts one direction and discovery name. Counts are reset by each
// read (Counters); active is a gauge.
type stats struct {
	active atomic.Int64
	mu     sync.Mutex
	c      serviceconnect.Counters
	moved  uint64 // connections opened, requests and byte counts ever recorded (Proxy.Activity)
}

func (s *stats) connOpened() {
	s.active.Add(1)
	s.mu.Lock()
	s.moved++
	s.c.NewConnections++
	s.mu.Unlock()
}

func (s *stats) connClosed() { s.active.Add(-1) }

func (s *stats) bytes(n int64) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.moved++
	s.c.ProcessedBytes += uint64(n)
	s.mu.Unlock()
}

// request counts one HTTP request: its status (the proxy's own when no
// upstream answered), the bytes of both bodies, and the time until the
// response's headers (rt < 0: no upstream response).
func (s *stats) request(status int, n int64, rt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moved++
	s.c.Requests++
	if n > 0 {
		s.c.ProcessedBytes += uint64(n)
	}
	switch status / 100 {
	case 2:
		s.c.HTTP2XX++
	case 3:
		s.c.HTTP3XX++
	case 4:
		s.c.HTTP4XX++
	case 5:
		s.c.HTTP5XX++
	}
	if rt >= 0 {
		ms := float64(rt) / float64(time.Millisecond)
		s.c.ResponseTimeSumMs += ms
		s.c.ResponseTimeCount++
		if ms > s.c.ResponseTimeMaxMs {
			s.c.ResponseTimeMaxMs = ms
		}
	}
}

// activity is the count Proxy.Activity sums.
func (s *stats) activity() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moved
}

// take returns the counts since the previous take and resets them.
func (s *stats) take() serviceconnect.Counters {
	s.mu.Lock()
	c := s.c
	s.c = serviceconnect.Counters{}
	s.mu.Unlock()
	if a := s.active.Load(); a > 0 {
		c.ActiveConnections = uint64(a)
	}
	return c
}
