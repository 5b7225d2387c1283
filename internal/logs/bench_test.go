package logs

// Benchmarks of the log store through the service, each beside a baseline
// in the same run: Docker's json-file driver's way of keeping logs (one
// JSON object per line appended to a plain file; here fsynced per batch,
// which json-file itself does not do) and of searching them (read every
// line, decode it, look for the text).
//
//	go test ./internal/logs -run '^$' -bench . -benchtime 3x
//
// Results are in docs/benchmarks.md.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/logfilter"
	"github.com/berthdev/berth/internal/logstore"
)

const benchBatch = 100

func benchLine(i int) string {
	level := "INFO"
	if i%100 == 0 {
		level = "ERROR"
	}
	return fmt.Sprintf("2026-12-02T02:00:00.000Z %s request id=%08d path=/api/v1/items status=200 duration_ms=%d", level, i, i%500)
}

func benchService(b *testing.B, dir string) *Service {
	st, err := logstore.Open(logstore.Config{Dir: dir, MaxBytes: 64 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	if _, err := s.CreateLogGroup(ctx, &logsapi.CreateLogGroupRequest{LogGroupName: ptr("bench")}); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkPutLogEvents appends batches of 100 ~100-byte lines, each batch
// fsynced before the call returns, with 1 and 8 concurrent writers (one
// stream each).
func BenchmarkPutLogEvents(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("berth/writers=%d", writers), func(b *testing.B) {
			s := benchService(b, b.TempDir())
			for w := range writers {
				s.CreateLogStream(ctx, &logsapi.CreateLogStreamRequest{LogGroupName: ptr("bench"), LogStreamName: ptr(fmt.Sprint("s", w))})
			}
			b.ResetTimer()
			start := time.Now()
			runWriters(b, writers, func(w, i int) {
				now := time.Now().UnixMilli()
				in := &logsapi.PutLogEventsRequest{LogGroupName: ptr("bench"), LogStreamName: ptr(fmt.Sprint("s", w))}
				for j := range benchBatch {
					in.LogEvents = append(in.LogEvents, logsapi.InputLogEvent{Timestamp: ptr(now), Message: ptr(benchLine(i*benchBatch + j))})
				}
				if _, err := s.PutLogEvents(ctx, in); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("jsonfile/writers=%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			files := make([]*os.File, writers)
			for w := range files {
				f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(w, "-json.log")), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				files[w] = f
			}
			b.ResetTimer()
			start := time.Now()
			runWriters(b, writers, func(w, i int) {
				var buf []byte
				for j := range benchBatch {
					buf = appendJSONLine(buf, benchLine(i*benchBatch+j))
				}
				if _, err := files[w].Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := files[w].Sync(); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// runWriters runs b.N batches spread over n goroutines.
func runWriters(b *testing.B, n int, batch func(w, i int)) {
	var wg sync.WaitGroup
	per := (b.N + n - 1) / n
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * per; i < min(b.N, (w+1)*per); i++ {
				batch(w, i)
			}
		}()
	}
	wg.Wait()
}

type jsonLine struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

func appendJSONLine(buf []byte, msg string) []byte {
	b, _ := json.Marshal(jsonLine{Log: msg + "\n", Stream: "stdout", Time: time.Now().UTC().Format(time.RFC3339Nano)})
	buf = append(buf, b...)
	return append(buf, '\n')
}

const filterEvents = 1_000_000

var (
	filterOnce sync.Once
	filterDir  string
	filterErr  error
)

// filterData writes 1M events once per run, into the log store (10
// streams) and into a json-file log, and returns the directory.
func filterData(b *testing.B) string {
	filterOnce.Do(func() {
		filterDir, filterErr = os.MkdirTemp("", "berth-logs-bench-")
		if filterErr != nil {
			return
		}
		st, err := logstore.Open(logstore.Config{Dir: filepath.Join(filterDir, "store"), MaxBytes: 64 << 30})
		if err != nil {
			filterErr = err
			return
		}
		defer st.Close()
		st.CreateGroup(logstore.GroupInfo{Name: "bench"})
		f, err := os.Create(filepath.Join(filterDir, "json.log"))
		if err != nil {
			filterErr = err
			return
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		now := time.Now().UnixMilli()
		const batch = 1000
		for i := 0; i < filterEvents; i += batch {
			entries := make([]logstore.Entry, batch)
			var buf []byte
			for j := range entries {
				entries[j] = logstore.Entry{Timestamp: now - int64(filterEvents-i-j), Message: benchLine(i + j)}
				buf = appendJSONLine(buf, entries[j].Message)
			}
			if _, err := st.Append("bench", fmt.Sprint("s", (i/batch)%10), entries, true, now); err != nil {
				filterErr = err
				return
			}
			w.Write(buf)
		}
		filterErr = w.Flush()
	})
	if filterErr != nil {
		b.Fatal(filterErr)
	}
	return filterDir
}

// BenchmarkFilterLogEvents1M searches 1M events for the 1% that contain
// "ERROR": all pages of FilterLogEvents (10,000 events each) against a
// scan of the json-file log that decodes each line and tests it.
func BenchmarkFilterLogEvents1M(b *testing.B) {
	dir := filterData(b)
	b.Run("berth", func(b *testing.B) {
		st, err := logstore.Open(logstore.Config{Dir: filepath.Join(dir, "store"), MaxBytes: 64 << 30})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		s := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			found := 0
			var tok *string
			for {
				out, err := s.FilterLogEvents(ctx, &logsapi.FilterLogEventsRequest{LogGroupName: ptr("bench"), FilterPattern: ptr("ERROR"), NextToken: tok})
				if err != nil {
					b.Fatal(err)
				}
				found += len(out.Events)
				if tok = out.NextToken; tok == nil {
					break
				}
			}
			if found != filterEvents/100 {
				b.Fatalf("found %d", found)
			}
		}
		b.ReportMetric(float64(b.N*filterEvents)/time.Since(start).Seconds(), "events-scanned/s")
	})
	b.Run("jsonfile", func(b *testing.B) {
		pat, _ := logfilter.Parse("ERROR")
		start := time.Now()
		for range b.N {
			f, err := os.Open(filepath.Join(dir, "json.log"))
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			found := 0
			for sc.Scan() {
				var l jsonLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					b.Fatal(err)
				}
				if pat.Match(strings.TrimSuffix(l.Log, "\n")) {
					found++
				}
			}
			f.Close()
			if found != filterEvents/100 {
				b.Fatalf("found %d", found)
			}
		}
		b.ReportMetric(float64(b.N*filterEvents)/time.Since(start).Seconds(), "events-scanned/s")
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if filterDir != "" {
		os.RemoveAll(filterDir)
	}
	os.Exit(code)
}

// BenchmarkOpenStore1M measures a start: opening the store that holds the
// 1M events scans every segment to rebuild the index.
func BenchmarkOpenStore1M(b *testing.B) {
	dir := filepath.Join(filterData(b), "store")
	b.ResetTimer()
	for range b.N {
		st, err := logstore.Open(logstore.Config{Dir: dir, MaxBytes: 64 << 30})
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
}
