package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/store"
)

func TestBoundCutsCallerTextAndMarksIt(t *testing.T) {
	huge := strings.Repeat("é<\x01", 400_000) // ~1.6 MB, multi-byte, escaped by JSON
	rec := Record{EventID: "e1", Time: time.Now(), RequestID: "r1", SourceIP: "127.0.0.1",
		Operation: huge, AccessKey: huge, Region: huge, UserAgent: huge, ErrorCode: "SignatureDoesNotMatch", ErrorMessage: huge,
		Parameters: json.RawMessage(`{"x":"` + strings.Repeat("a", MaxParameters) + `"}`),
		Resources:  []Resource{{Type: "AWS::ECS::Cluster", Name: huge}}}
	b := Bound(rec)
	for _, s := range []string{b.Operation, b.AccessKey, b.Region} {
		if len(s) > MaxField || !strings.HasSuffix(s, truncMark) || !utf8.ValidString(s) {
			t.Fatalf("field not cut to %d on a rune boundary: %d bytes", MaxField, len(s))
		}
	}
	if jsonLen(b.UserAgent) > MaxUserAgent || jsonLen(b.ErrorMessage) > MaxErrorMessage || jsonLen(b.Resources[0].Name) > MaxField {
		t.Fatal("user agent, message or resource not cut")
	}
	if b.ErrorCode != "SignatureDoesNotMatch" || b.SourceIP != "127.0.0.1" {
		t.Fatal("short fields changed")
	}
	if string(b.Parameters) != `{"berthTruncated":true,"bytes":65544}` {
		t.Fatalf("parameters: %s", b.Parameters)
	}
	want := []string{"operation", "accessKey", "userAgent", "region", "errorMessage", "parameters", "resources"}
	if !slices.Equal(b.Truncated, want) {
		t.Fatalf("Truncated = %v, want %v", b.Truncated, want)
	}
	if rec.Resources[0].Name != huge {
		t.Fatal("Bound changed the caller's resources")
	}
	out, err := json.Marshal(b)
	if err != nil || !json.Valid(out) {
		t.Fatal("bounded record is not valid JSON")
	}
	if len(out) > MaxRecord {
		t.Fatalf("bounded record is %d bytes, over MaxRecord %d", len(out), MaxRecord)
	}
	var back Record
	if err := json.Unmarshal(out, &back); err != nil || back.UserAgent != b.UserAgent {
		t.Fatal("bounded record does not round-trip")
	}
	t.Logf("a record with 1.6 MB fields bounds to %d bytes", len(out))
}

func TestBoundLeavesSmallRecordsAlone(t *testing.T) {
	rec := Record{EventID: "e1", Time: time.Now(), Operation: "CreateCluster", UserAgent: "aws-cli/2.9",
		Parameters: json.RawMessage(`{"clusterName":"a"}`), Resources: []Resource{{Type: "AWS::ECS::Cluster", Name: "a"}}}
	b := Bound(rec)
	if b.Truncated != nil || string(b.Parameters) != string(rec.Parameters) || b.UserAgent != rec.UserAgent || b.Operation != rec.Operation {
		t.Fatalf("small record changed: %+v", b)
	}
}

func TestTruncateCountsJSONEscapes(t *testing.T) {
	for _, s := range []string{strings.Repeat("<", 5000), strings.Repeat("\x01\xff\"", 3000), strings.Repeat("a\u2028é", 2000)} {
		for _, max := range []int{MaxField, MaxUserAgent} {
			got := truncate(s, max)
			enc, _ := json.Marshal(got)
			if len(enc)-2 > max || !strings.HasSuffix(got, truncMark) {
				t.Fatalf("truncate(%q..., %d): JSON %d bytes", s[:6], max, len(enc)-2)
			}
			if len(enc)-2 < max-12 {
				t.Fatalf("truncate(%q..., %d) cut too much: JSON %d bytes", s[:6], max, len(enc)-2)
			}
		}
	}
	if s := strings.Repeat("<", MaxField/6); truncate(s, MaxField) != s {
		t.Fatal("a string within its bound was cut")
	}
}

func TestTruncateRuneBoundary(t *testing.T) {
	s := strings.Repeat("€", 100) // 3 bytes each
	for max := len(truncMark) + 1; max < 60; max++ {
		got := truncate(s, max)
		if len(got) > max || !utf8.ValidString(got) || !strings.HasSuffix(got, truncMark) {
			t.Fatalf("truncate(%d) = %q", max, got)
		}
	}
}

func trailBytes(t *testing.T, st store.Store) (n int64, count int) {
	t.Helper()
	after := ""
	for {
		res, err := st.List(context.Background(), Prefix, store.ListOptions{StartAfter: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range res.KVs {
			n += int64(len(kv.Key) + len(kv.Value))
			count++
			after = kv.Key
		}
		if !res.More {
			return n, count
		}
	}
}

func TestTrailStaysWithinItsByteBudgetOldestFirst(t *testing.T) {
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	st := e.Store()
	const budget = 200 << 10
	// Records written before the trail starts are counted at start.
	base := time.Now().Add(-time.Hour)
	pre := NewTrail(st, 0, 1<<40, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go pre.Run(ctx)
	ua := strings.Repeat("u", 5000)
	for i := 0; i < 200; i++ {
		r := rec(i, base.Add(time.Duration(i)*time.Millisecond), "CreateCluster")
		r.UserAgent = ua
		if err := pre.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	before, _ := trailBytes(t, st)
	if before < budget {
		t.Fatalf("setup: %d bytes, want over %d", before, budget)
	}

	tr := NewTrail(st, 0, budget, nil)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	for i := 200; i < 600; i++ {
		r := rec(i, base.Add(time.Duration(i)*time.Millisecond), "CreateCluster")
		r.UserAgent = ua
		if err := tr.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if n, _ := trailBytes(t, st); n > budget {
				t.Fatalf("after %d records the trail holds %d bytes, over its budget %d", i, n, budget)
			}
		}
	}
	n, count := trailBytes(t, st)
	if n > budget || n < budget/2 {
		t.Fatalf("trail holds %d bytes, want between %d and %d", n, budget/2, budget)
	}
	// The newest records are the ones kept.
	p, err := tr.Lookup(context.Background(), Query{Limit: count})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != count || p.Records[0].EventID != "e599" || p.Records[count-1].EventID != fmt.Sprintf("e%03d", 600-count) {
		t.Fatalf("kept %d records from %s to %s", len(p.Records), p.Records[count-1].EventID, p.Records[0].EventID)
	}
	t.Logf("budget %d: %d records kept, %d bytes (from %d before start)", budget, count, n, before)
}
