// Package metadata is the task metadata endpoint (version 4, and version 3
// on the same paths) that `berth agent` serves to the containers it runs.
//
// Every container gets its own URL, http://<addr>/v4/<token>, in
// ECS_CONTAINER_METADATA_URI_V4 (and ECS_CONTAINER_METADATA_URI). The
// token is random and maps to exactly one container, so a container can
// read its own task and nothing else. The task runner registers each
// container's token and keeps the task's snapshot current with SetTask;
// the server only reads snapshots (and Docker stats, through Stats).
//
// Paths under the prefix: "" (the container), /task, /taskWithTags,
// /stats (the container's Docker stats), /task/stats (by Docker id). The
// JSON shapes and field names are ECS's; timestamps are RFC 3339 strings.
package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultPort is the port the endpoint listens on (the ECS agent's
// introspection port plus one).
const DefaultPort = 51679

// Network is one of a container's networks.
type Network struct {
	NetworkMode   string   `json:"NetworkMode"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
	// awsvpc only.
	AttachmentIndex          *int   `json:"AttachmentIndex,omitempty"`
	MACAddress               string `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string `json:"IPv4SubnetCIDRBlock,omitempty"`
	PrivateDNSName           string `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIpv4Address string `json:"SubnetGatewayIpv4Address,omitempty"`
}

// Limits are a container's (CPU units, MiB) or a task's (vCPU, MiB)
// resource limits.
type Limits struct {
	CPU    float64 `json:"CPU"`
	Memory int64   `json:"Memory,omitempty"`
}

// Health is a container's health check state.
type Health struct {
	Status      string     `json:"status"`
	StatusSince *time.Time `json:"statusSince,omitempty"`
	ExitCode    *int       `json:"exitCode,omitempty"`
	Output      string     `json:"output,omitempty"`
}

// Port is a published port.
type Port struct {
	ContainerPort int    `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      int    `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

// Container is a container's metadata (the "/" document, and an element
// of a task's Containers).
type Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []Port            `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        Limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
	Health        *Health           `json:"Health,omitempty"`
	Networks      []Network         `json:"Networks,omitempty"`
	Snapshotter   string            `json:"Snapshotter,omitempty"`
}

// Task is a task's metadata (the /task document).
type Task struct {
	Cluster            string            `json:"Cluster"`
	TaskARN            string            `json:"TaskARN"`
	Family             string            `json:"Family"`
	Revision           string            `json:"Revision"`
	DesiredStatus      string            `json:"DesiredStatus"`
	KnownStatus        string            `json:"KnownStatus"`
	Limits             *Limits           `json:"Limits,omitempty"`
	PullStartedAt      *time.Time        `json:"PullStartedAt,omitempty"`
	PullStoppedAt      *time.Time        `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt *time.Time        `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone   string            `json:"AvailabilityZone,omitempty"`
	LaunchType         string            `json:"LaunchType"`
	Containers         []Container       `json:"Containers"`
	ServiceName        string            `json:"ServiceName,omitempty"`
	TaskTags           map[string]string `json:"TaskTags,omitempty"`
	// EphemeralStorageMetrics is a Fargate task's (MiB): Berth reports the
	// reserved size, not the usage.
	EphemeralStorageMetrics *EphemeralStorageMetrics `json:"EphemeralStorageMetrics,omitempty"`
	// ContainerInstanceTags is served by /taskWithTags only.
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags,omitempty"`

	// Not served: what the agent's stats collector needs to attribute a
	// task's usage (the task's group and startedBy, and the CPU units and
	// MiB it was placed with).
	Group             string `json:"-"`
	StartedBy         string `json:"-"`
	ReservedCPU       int    `json:"-"`
	ReservedMemoryMiB int    `json:"-"`
}

// EphemeralStorageMetrics is a Fargate task's ephemeral storage (MiB).
type EphemeralStorageMetrics struct {
	Utilized *int64 `json:"Utilized,omitempty"`
	Reserved int64  `json:"Reserved"`
}

// StatsFunc returns Docker's stats document of a container.
type StatsFunc func(ctx context.Context, dockerID string) (json.RawMessage, error)

// Server is the endpoint. Its zero value is not usable; use New.
type Server struct {
	stats StatsFunc
	log   *slog.Logger

	mu     sync.RWMutex
	tokens map[string]ref           // token -> container
	tasks  map[string]*Task         // by task ARN
	lns    map[string]*http.Server  // by listen address
	errs   map[string]chan struct{} // closed when a listener ends
}

type ref struct{ task, container string }

// New returns a server. stats may be nil (the stats paths then answer
// empty documents).
func New(stats StatsFunc, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{stats: stats, log: log, tokens: map[string]ref{}, tasks: map[string]*Task{},
		lns: map[string]*http.Server{}, errs: map[string]chan struct{}{}}
}

// NewToken returns a fresh random container token.
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Register maps token to a container of a task. The task's snapshot is
// set by SetTask.
func (s *Server) Register(token, taskARN, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = ref{taskARN, container}
}

// SetTask replaces a task's snapshot.
func (s *Server) SetTask(t Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks[t.TaskARN] = &t
}

// Forget drops a task and every token of it.
func (s *Server) Forget(taskARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tasks, taskARN)
	for tok, r := range s.tokens {
		if r.task == taskARN {
			delete(s.tokens, tok)
		}
	}
}

// Tasks returns a copy of every task's snapshot.
func (s *Server) Tasks() []Task {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Task, 0, len(s.tasks))
	for _, t := range s.tasks {
		c := *t
		c.Containers = append([]Container(nil), t.Containers...)
		out = append(out, c)
	}
	return out
}

// Listen starts serving on addr ("172.17.0.1:51679") unless it already
// does, or already listens on the wildcard address ("0.0.0.0", "::" or
// "") of the same port, which covers every address of the host: binding
// the specific address next to it would fail with "address already in
// use". It returns once the socket is bound.
func (s *Server) Listen(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lns[addr]; ok {
		return nil
	}
	if covered(addr, s.lns) {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.lns[addr], s.errs[addr] = srv, done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("task metadata endpoint stopped", "addr", addr, "err", err)
		}
	}()
	return nil
}

// covered reports whether a wildcard listener of lns serves addr's port.
func covered(addr string, lns map[string]*http.Server) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	for a := range lns {
		h, p, err := net.SplitHostPort(a)
		if err != nil || p != port {
			continue
		}
		if h == "" || h == "0.0.0.0" || h == "::" {
			return true
		}
	}
	return false
}

// Addrs lists the addresses the server listens on.
func (s *Server) Addrs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.lns))
	for a := range s.lns {
		out = append(out, a)
	}
	return out
}

// Close stops every listener.
func (s *Server) Close() error {
	s.mu.Lock()
	lns := s.lns
	s.lns = map[string]*http.Server{}
	s.mu.Unlock()
	for _, srv := range lns {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
	return nil
}

// ServeHTTP answers /v4/<token>[/path] and /v3/<token>[/path].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	version, rest, _ := strings.Cut(p, "/")
	if version != "v4" && version != "v3" {
		http.NotFound(w, r)
		return
	}
	token, sub, _ := strings.Cut(rest, "/")
	sub = strings.TrimSuffix(sub, "/")
	s.mu.RLock()
	rf, ok := s.tokens[token]
	var task Task
	if t := s.tasks[rf.task]; ok && t != nil {
		task = *t
	} else {
		ok = false
	}
	s.mu.RUnlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown metadata token"})
		return
	}
	var self *Container
	for i := range task.Containers {
		if task.Containers[i].Name == rf.container {
			self = &task.Containers[i]
		}
	}
	switch sub {
	case "":
		if self == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "container not known yet"})
			return
		}
		writeJSON(w, http.StatusOK, self)
	case "task", "taskWithTags":
		if sub == "task" {
			task.TaskTags, task.ContainerInstanceTags = nil, nil
		}
		writeJSON(w, http.StatusOK, task)
	case "stats":
		if self == nil || self.DockerID == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "container not created yet"})
			return
		}
		if s.stats == nil {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		raw, err := s.stats(r.Context(), self.DockerID)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	case "task/stats":
		out := map[string]json.RawMessage{}
		for _, c := range task.Containers {
			if c.DockerID == "" {
				continue
			}
			out[c.DockerID] = json.RawMessage("null")
			// The asking container runs, whatever the runner has seen yet
			// (it can ask before its own start is reported).
			running := c.KnownStatus == "RUNNING" || (self != nil && c.DockerID == self.DockerID)
			if s.stats != nil && running {
				if raw, err := s.stats(r.Context(), c.DockerID); err == nil {
					out[c.DockerID] = raw
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
