package console

import (
	"crypto/subtle"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/iam"
)

// SessionTTL is how long a console session lasts from sign-in. It is not
// extended by use: after it, the browser must sign in again.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the sessions held; the oldest is dropped past it.
const maxSessions = 1000

// session is one signed-in browser. Sessions live in the server's memory
// only: a restart signs every browser out.
type session struct {
	ID       string // the cookie's value (32 random bytes)
	CSRF     string // sent back in X-Berth-Csrf on every POST
	Identity iam.Identity
	Expires  time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func (s *sessions) create(id iam.Identity, now time.Time) *session {
	ss := &session{ID: randomID(32), CSRF: randomID(24), Identity: id, Expires: now.Add(SessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, o := range s.m {
			if oldest == nil || o.Expires.Before(oldest.Expires) {
				oldest = o
			}
		}
		delete(s.m, oldest.ID)
	}
	s.m[ss.ID] = ss
	return ss
}

// get returns the live session with this id.
func (s *sessions) get(id string, now time.Time) (*session, bool) {
	if id == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if !now.Before(ss.Expires) {
		delete(s.m, id)
		return nil, false
	}
	return ss, true
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func (s *sessions) sweep(now time.Time) {
	for id, ss := range s.m {
		if !now.Before(ss.Expires) {
			delete(s.m, id)
		}
	}
}

// csrfOK compares a request's CSRF header with the session's in constant time.
func (ss *session) csrfOK(h string) bool {
	return h != "" && subtle.ConstantTimeCompare([]byte(h), []byte(ss.CSRF)) == 1
}
