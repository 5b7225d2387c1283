package scenario

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/audit"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/sigv4"
	"github.com/berthdev/berth/internal/store"
)

// floodBudget is the audit byte budget of the flood tests: small, so that
// the flood overflows it many times over in a few seconds.
const floodBudget = 256 << 10

// flood sends n requests with bad signatures (unknown huge access keys,
// the root key with a wrong secret, no signature) with large headers and
// bodies, from 8 connections, and says how many it sent.
func flood(t *testing.T, endpoint, rootKey string, n int) int {
	t.Helper()
	body := bytes.Repeat([]byte(" "), 512<<10)
	ua := strings.Repeat("flood-agent/1.0 <&\"é\\> ", 200<<10/22) // ~200 KiB
	hugeUA := strings.Repeat("x", 950<<10)                        // ~1 MB with the rest: Go's header cap
	var sent, errs atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				req, _ := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.CreateCluster"+strings.Repeat("Z", i%3*4000))
				req.Header.Set("User-Agent", ua)
				if i%50 == 0 {
					req.Header.Set("User-Agent", hugeUA)
				}
				switch i % 3 {
				case 0: // an unknown access key of 20 KB in a forged scope
					req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
					req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1%s/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=%064d",
						strings.Repeat("AKIA", 5000), time.Now().UTC().Format("20060102"), strings.Repeat("-", 5000), i))
				case 1: // the root key, wrong secret
					sigv4.Sign(req, body, rootKey, "not-the-secret", "us-east-1", "ecs", time.Now())
				case 2: // no signature
				}
				resp, err := client.Do(req)
				if err != nil {
					if errs.Add(1) < 5 {
						t.Logf("flood request %d: %v", i, err)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 403 && resp.StatusCode != 400 {
					t.Errorf("bad signature answered %d", resp.StatusCode)
				}
				sent.Add(1)
			}
		}(w)
	}
	wg.Wait()
	return int(sent.Load())
}

// auditBytes sums the keys and values under the audit prefix.
func auditBytes(t *testing.T, st store.Store) (total int64, count int, largest int) {
	t.Helper()
	after := ""
	for {
		res, err := st.List(context.Background(), audit.Prefix, store.ListOptions{StartAfter: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range res.KVs {
			n := len(kv.Key) + len(kv.Value)
			total += int64(n)
			largest = max(largest, n)
			count++
			after = kv.Key
		}
		if !res.More {
			return
		}
	}
}

// validCalls makes authenticated mutating calls until stop is closed and
// fails the test if any fails.
func validCalls(t *testing.T, s *berthtest.Server, stop <-chan struct{}) (done func() int) {
	c := ecs.NewFromConfig(s.AWSConfig())
	var n atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("during-%d", i))})
			cancel()
			if err != nil {
				t.Errorf("valid call during the flood: %v", err)
				return
			}
			n.Add(1)
		}
	}()
	return func() int { <-finished; return int(n.Load()) }
}

// afterFlood checks a valid call works and is found in the trail.
func afterFlood(t *testing.T, s *berthtest.Server) {
	t.Helper()
	ctx := context.Background()
	if _, err := ecs.NewFromConfig(s.AWSConfig()).CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("after-flood")}); err != nil {
		t.Fatalf("valid call after the flood: %v", err)
	}
	out, err := cloudtrail.NewFromConfig(s.AWSConfig()).LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String("after-flood")}}})
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("the call after the flood is not in the trail: %v %d", err, len(out.Events))
	}
}

func TestAuditFloodInProcess(t *testing.T) {
	s := berthtest.Start(t, func(c *daemon.Config) { c.AuditMaxBytes = floodBudget })
	stop := make(chan struct{})
	done := validCalls(t, s, stop)
	start := time.Now()
	sent := flood(t, s.Endpoint, s.Creds.AccessKeyID, 1200)
	close(stop)
	valid := done()
	afterFlood(t, s)
	total, count, largest := auditBytes(t, s.Daemon.Store())
	t.Logf("%d bad requests in %v, %d valid calls during; audit trail: %d records, %d bytes (budget %d), largest record %d bytes",
		sent, time.Since(start).Round(time.Millisecond), valid, count, total, floodBudget, largest)
	if sent < 1150 || valid == 0 {
		t.Fatalf("flood sent %d, valid calls %d", sent, valid)
	}
	if total > floodBudget {
		t.Fatalf("audit trail holds %d bytes, over its budget %d", total, floodBudget)
	}
	if count >= sent {
		t.Fatalf("the flood (%d requests) kept all its %d records: too small to test the budget", sent, count)
	}
	if largest > 8<<10 {
		t.Fatalf("an audit record of %d bytes", largest)
	}
}

func TestAuditFloodProcess(t *testing.T) {
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil, "--audit-max-bytes", fmt.Sprint(floodBudget))
	stop := make(chan struct{})
	done := validCalls(t, p.Server, stop)
	sent := flood(t, p.Endpoint, p.Creds.AccessKeyID, 800)
	close(stop)
	valid := done()
	afterFlood(t, p.Server)
	p.Kill9()
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	total, count, largest := auditBytes(t, e.Store())
	var dbSize int64
	if fi, err := os.Stat(filepath.Join(dir, "etcd", "member", "snap", "db")); err == nil {
		dbSize = fi.Size()
	}
	t.Logf("berth up: %d bad requests, %d valid calls during; audit trail: %d records, %d bytes (budget %d), largest %d bytes; etcd db file %d bytes",
		sent, valid, count, total, floodBudget, largest, dbSize)
	if sent < 750 || valid == 0 {
		t.Fatalf("flood sent %d, valid calls %d", sent, valid)
	}
	if total > floodBudget || largest > 8<<10 {
		t.Fatalf("audit trail holds %d bytes (largest record %d), over its budget %d", total, largest, floodBudget)
	}
}
