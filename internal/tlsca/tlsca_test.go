package tlsca

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCAKeptAndLeafReissued(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := LoadOrCreateCA(dir, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, fi.Mode())
		}
	}
	again, err := LoadOrCreateCA(dir, "test", now)
	if err != nil || Pin(again.Cert) != Pin(ca.Cert) {
		t.Fatalf("the CA changed across loads: %v", err)
	}
	spec := LeafSpec{CommonName: "s", Server: true, DNSNames: []string{AgentServerName}}
	l1, err := ca.Issue(dir, "server", spec, now)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l1.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("leaf key mode %v", fi.Mode())
	}
	l2, _ := ca.Issue(dir, "server", spec, now)
	if string(l2.TLS.Certificate[0]) != string(l1.TLS.Certificate[0]) {
		t.Fatal("a leaf that covers the spec was issued again")
	}
	spec.DNSNames = append(spec.DNSNames, "extra.example")
	l3, _ := ca.Issue(dir, "server", spec, now)
	if string(l3.TLS.Certificate[0]) == string(l1.TLS.Certificate[0]) {
		t.Fatal("a leaf missing a name was kept")
	}
	l4, _ := ca.Issue(dir, "server", spec, now.Add(LeafValidity))
	if string(l4.TLS.Certificate[0]) == string(l3.TLS.Certificate[0]) {
		t.Fatal("an expiring leaf was kept")
	}
}

func TestDiscoverChecksThePin(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(dir, "server", LeafSpec{CommonName: "s", Server: true, DNSNames: []string{AgentServerName}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := NewDualListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Write([]byte("tls"))
		} else {
			w.Write([]byte("plain"))
		}
	})}
	go srv.Serve(dl)
	defer srv.Close()
	addr := ln.Addr().String()

	got, err := Discover(t.Context(), addr, Pin(ca.Cert))
	if err != nil || string(got) != string(ca.CertPEM) {
		t.Fatalf("Discover with the right pin: %v", err)
	}
	other, _ := LoadOrCreateCA(t.TempDir(), "other", time.Now())
	if _, err := Discover(t.Context(), addr, Pin(other.Cert)); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("Discover with another CA's pin: %v", err)
	}
	if _, err := Discover(t.Context(), addr, "sha256:xyz"); err == nil {
		t.Fatal("Discover accepted a malformed pin")
	}
	// Both protocols on the one port; the pinned client trusts the CA.
	cfg, err := ClientConfig(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]string{"http://" + addr: "plain", "https://" + addr: "tls"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		b := make([]byte, 10)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if string(b[:n]) != want {
			t.Fatalf("%s answered %q, want %q", url, b[:n], want)
		}
	}
	// A client pinning another CA refuses the server.
	ocfg, _ := ClientConfig(other.CertPEM)
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: ocfg}}).Get("https://" + addr); err == nil {
		t.Fatal("a client pinning another CA connected")
	}
}
