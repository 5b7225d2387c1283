package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestServerPathsAndIsolation(t *testing.T) {
	s := New(func(_ context.Context, id string) (json.RawMessage, error) {
		return json.RawMessage(`{"id":"` + id + `","memory_stats":{}}`), nil
	}, nil)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetTask(Task{Cluster: "c", TaskARN: "arn:t1", Family: "f", Revision: "3", DesiredStatus: "RUNNING", KnownStatus: "RUNNING",
		LaunchType: "EC2", PullStartedAt: &now, TaskTags: map[string]string{"team": "a"},
		Containers: []Container{{DockerID: "d1", Name: "web", KnownStatus: "RUNNING", Type: "NORMAL", StartedAt: &now,
			Networks: []Network{{NetworkMode: "bridge", IPv4Addresses: []string{"172.17.0.2"}}}},
			{DockerID: "d2", Name: "side", KnownStatus: "RUNNING", Type: "NORMAL"}}})
	s.SetTask(Task{TaskARN: "arn:t2", Containers: []Container{{DockerID: "d3", Name: "other"}}})
	s.Register("tok1", "arn:t1", "web")
	s.Register("tok2", "arn:t2", "other")
	srv := httptest.NewServer(s)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		path, want, notWant string
		code                int
	}{
		{"/v4/tok1", `"DockerId": "d1"`, `"d2"`, 200},
		{"/v4/tok1", `"StartedAt": "2026-01-02T03:04:05Z"`, "", 200},
		{"/v4/tok1/task", `"TaskARN": "arn:t1"`, "team", 200},
		{"/v4/tok1/task", `"Revision": "3"`, "arn:t2", 200},
		{"/v4/tok1/taskWithTags", `"TaskTags"`, "", 200},
		{"/v4/tok1/stats", `"id":"d1"`, "", 200},
		{"/v4/tok1/task/stats", `"d2"`, "", 200},
		{"/v3/tok1/task", `"Family": "f"`, "", 200},
		{"/v4/tok2/task", `"arn:t2"`, "arn:t1", 200},
		{"/v4/nope/task", "unknown metadata token", "", 404},
		{"/v4/tok1/elsewhere", "", "", 404},
	}
	for _, tc := range cases {
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) || (tc.notWant != "" && strings.Contains(body, tc.notWant)) {
			t.Errorf("%s: %d %s", tc.path, code, body)
		}
	}
	s.Forget("arn:t1")
	if code, _ := get("/v4/tok1"); code != 404 {
		t.Errorf("after Forget: %d", code)
	}
}

func TestListen(t *testing.T) {
	s := New(nil, nil)
	defer s.Close()
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if len(s.Addrs()) != 1 {
		t.Errorf("addrs %v", s.Addrs())
	}
}

// A server listening on the wildcard address serves the specific
// addresses of the network modes (the bridge and awsvpc gateways, the
// loopback) on the same port: asking for them is not an error.
func TestListenSpecificAddressUnderWildcard(t *testing.T) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := New(nil, nil)
	defer s.Close()
	if err := s.Listen(fmt.Sprintf("0.0.0.0:%d", port)); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Fatalf("specific address under the wildcard: %v", err)
	}
	if got := s.Addrs(); len(got) != 1 {
		t.Fatalf("listeners %v, want only the wildcard", got)
	}
	s.SetTask(Task{TaskARN: "arn:t", Containers: []Container{{Name: "c"}}})
	s.Register("tok", "arn:t", "c")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v4/tok/task", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Another port is a listener of its own.
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs(); len(got) != 2 {
		t.Fatalf("listeners %v, want two", got)
	}
}

// A container asking for its task's stats right after its own start, before
// the runner has seen it RUNNING, gets its own stats; a sibling not yet
// running gets null.
func TestTaskStatsOfTheAskingContainerBeforeItsStartIsSeen(t *testing.T) {
	s := New(func(_ context.Context, id string) (json.RawMessage, error) {
		return json.RawMessage(`{"id":"` + id + `"}`), nil
	}, nil)
	s.SetTask(Task{TaskARN: "arn:t", Containers: []Container{{DockerID: "d1", Name: "main", KnownStatus: "PENDING"},
		{DockerID: "d2", Name: "side", KnownStatus: "PENDING"}}})
	s.Register("tok", "arn:t", "main")
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v4/tok/task/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var own struct{ ID string }
	if json.Unmarshal(got["d1"], &own) != nil || own.ID != "d1" || string(got["d2"]) != "null" {
		t.Fatalf("task stats: d1 %s, d2 %s", got["d1"], got["d2"])
	}
}
