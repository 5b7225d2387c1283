// Package console is Berth's web console: a browser UI served under
// /console/ on the API port, its assets embedded in the binary. A browser
// signs in with a one-time token (token.go) exchanged for a session cookie
// (session.go); the console's data calls go through the front door's
// ServeAs, so they run the AWS API's own handlers as the identity that
// signed in, and its live view follows ECS's feed over server-sent events
// (stream.go). See docs/console.md.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/events"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/logs"
	"github.com/berthdev/berth/internal/store"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CookieName is the session cookie's name.
const CookieName = "berth_console"

// CSRFHeader must carry the session's CSRF token on every POST.
const CSRFHeader = "X-Berth-Csrf"

// keyRedeemed is where redeemed sign-in tokens' nonces are kept (with a
// lease that ends when the token would have expired anyway).
const keyRedeemed = "/berth/console/redeemed/"

// API runs one AWS operation as an already authenticated identity
// (*awsproto.FrontDoor).
type API interface {
	ServeAs(w http.ResponseWriter, r *http.Request, id iam.Identity, signingName, operation string)
}

// Keys tells the console the secret and identity behind an access key
// (*iam.Keyring).
type Keys interface {
	Secret(accessKey string) (string, bool)
	Identity(accessKey string) (iam.Identity, bool)
}

// Config configures a Handler.
type Config struct {
	API   API
	Keys  Keys
	ECS   *ecs.Service  // the live feed
	Logs  *logs.Service // log tails
	Store store.Store   // redeemed sign-in tokens
	// Fargate reads the Fargate capacity shared by every cluster
	// (GetFargateCapacity, local.go); nil: not served.
	Fargate func(ctx context.Context) (ecs.FargateCapacityView, error)
	// Deliveries reads an EventBridge rule's delivery records, newest
	// first (ListRuleDeliveries, local.go); nil: not served.
	Deliveries func(ctx context.Context, bus, rule string) ([]events.Delivery, error)
	Now        func() time.Time
	Log        *slog.Logger
}

// Handler serves /console/.
type Handler struct {
	cfg      Config
	sessions *sessions
	static   http.Handler
	// stop ends the live streams when the server shuts down.
	stop chan struct{}
}

// New builds the console's handler.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return &Handler{cfg: cfg, sessions: newSessions(), static: http.StripPrefix(Prefix, http.FileServer(http.FS(sub))), stop: make(chan struct{})}
}

// Stop ends the live streams (the HTTP server's shutdown hook).
func (h *Handler) Stop() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
}

// SignInURL is the URL that signs a browser in with tok on endpoint.
func SignInURL(endpoint, tok string) string {
	return strings.TrimRight(endpoint, "/") + Prefix + "signin?token=" + tok
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	p := r.URL.Path
	switch {
	case p == "/console":
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	case p == Prefix+"signin":
		h.signIn(w, r)
	case strings.HasPrefix(p, Prefix+"api/"):
		hd.Set("Cache-Control", "no-store")
		h.serveAPI(w, r, strings.TrimPrefix(p, Prefix+"api/"))
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// The shell (HTML, CSS, scripts) holds no data: it asks
		// /console/api/session and shows the sign-in hint on 401.
		if p == Prefix || p == Prefix+"index.html" {
			hd.Set("Cache-Control", "no-cache")
		}
		h.static.ServeHTTP(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// signIn exchanges a one-time token for a session cookie, then sends the
// browser to the console without the token in its address bar or history.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	now := h.cfg.Now()
	id, err := h.redeem(r.Context(), r.URL.Query().Get("token"), now)
	if err != nil {
		status := http.StatusUnauthorized
		if errs.KindOf(err) != errs.Unauthenticated {
			status = http.StatusServiceUnavailable
			h.cfg.Log.Error("console sign-in failed", "err", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		writeSignInError(w, errs.MessageOf(err))
		return
	}
	ss := h.sessions.create(id, now)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: ss.ID, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(SessionTTL / time.Second)})
	h.cfg.Log.Info("console session started", "arn", id.ARN, "access_key", id.AccessKey, "source", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// redeem verifies a token and records its nonce so it cannot be used again
// (in the store, so a restart does not make it usable again).
func (h *Handler) redeem(ctx context.Context, tok string, now time.Time) (iam.Identity, error) {
	pt, err := verifyToken(tok, h.cfg.Keys.Secret, now)
	if err != nil {
		return iam.Identity{}, err
	}
	id, ok := h.cfg.Keys.Identity(pt.AccessKey)
	if !ok {
		return iam.Identity{}, errs.E(errs.Unauthenticated, "The sign-in link is not valid or has expired: run `berth console` for a new one.")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ttl := max(pt.Expires.Sub(now)+time.Minute, 5*time.Second)
	lease, err := h.cfg.Store.Grant(ctx, ttl)
	if err != nil {
		return iam.Identity{}, err
	}
	key := keyRedeemed + pt.Nonce
	res, err := h.cfg.Store.Txn(ctx, []store.Cmp{store.Absent(key)}, store.PutWithLease(key, []byte(pt.AccessKey), lease))
	if err != nil {
		return iam.Identity{}, err
	}
	if !res.Succeeded {
		h.cfg.Store.Revoke(ctx, lease)
		return iam.Identity{}, errs.E(errs.Unauthenticated, "This sign-in link was already used: run `berth console` for a new one.")
	}
	return id, nil
}

// current returns the request's live session, refusing (and answering)
// when there is none, when its identity's key is gone, or when a POST
// lacks the session's CSRF token.
func (h *Handler) current(w http.ResponseWriter, r *http.Request) (*session, bool) {
	c, err := r.Cookie(CookieName)
	var ss *session
	ok := false
	if err == nil {
		ss, ok = h.sessions.get(c.Value, h.cfg.Now())
	}
	if ok {
		if id, known := h.cfg.Keys.Identity(ss.Identity.AccessKey); !known || id.ARN != ss.Identity.ARN {
			h.sessions.remove(ss.ID)
			ok = false
		}
	}
	if !ok {
		writeJSONError(w, http.StatusUnauthorized, "SessionExpired", "Not signed in, or the session expired: run `berth console` for a sign-in link.")
		return nil, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !ss.csrfOK(r.Header.Get(CSRFHeader)) {
		writeJSONError(w, http.StatusForbidden, "InvalidCsrfToken", "The request lacks the session's CSRF token.")
		return nil, false
	}
	return ss, true
}

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, p string) {
	ss, ok := h.current(w, r)
	if !ok {
		return
	}
	switch {
	case p == "session" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{"arn": ss.Identity.ARN, "account": ss.Identity.Account, "accessKeyId": ss.Identity.AccessKey,
			"csrf": ss.CSRF, "expires": ss.Expires.UTC().Format(time.RFC3339)})
	case p == "signout" && r.Method == http.MethodPost:
		h.sessions.remove(ss.ID)
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "aws/") && r.Method == http.MethodPost:
		// aws/<signing name>/<Operation>: the body is the operation's
		// JSON input; the answer is the AWS JSON answer.
		svc, op, found := strings.Cut(strings.TrimPrefix(p, "aws/"), "/")
		if !found || svc == "" || op == "" || strings.Contains(op, "/") {
			writeJSONError(w, http.StatusNotFound, "UnknownOperationException", "The path names no service and operation")
			return
		}
		h.cfg.API.ServeAs(w, r, ss.Identity, svc, op)
	case p == "stream" && r.Method == http.MethodGet:
		h.stream(w, r, ss)
	case p == "logs" && r.Method == http.MethodGet:
		h.tail(w, r, ss)
	case p == "watch" && r.Method == http.MethodGet:
		h.watch(w, r, ss)
	case strings.HasPrefix(p, LocalService+"/") && r.Method == http.MethodGet:
		h.serveLocal(w, r, strings.TrimPrefix(p, LocalService+"/"))
	default:
		writeJSONError(w, http.StatusNotFound, "NotFound", "No such console API")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func writeSignInError(w http.ResponseWriter, msg string) {
	msg = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(msg)
	w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>Berth console: sign-in failed</title>` +
		`<link rel="stylesheet" href="/console/style.css"><main class="signin"><h1>Sign-in failed</h1><p>` + msg + `</p></main>`))
}
