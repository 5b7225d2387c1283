package awslogs

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkPipeline measures the agent's own work per line: parsing
// Docker's stream, joining lines, grouping and batching (no network).
func BenchmarkPipeline(b *testing.B) {
	var buf bytes.Buffer
	const n = 10000
	for i := 0; i < n; i++ {
		buf.Write(frame(1, t0.Add(time.Duration(i)*time.Microsecond), fmt.Sprintf("line %06d some payload of a typical log line\n", i)))
	}
	data := buf.Bytes()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		sr := NewStreamReader(bytes.NewReader(data), false)
		var l Lines
		var g Grouper
		var batch Batch
		for {
			r, err := sr.Next()
			if err == io.EOF {
				break
			}
			if ln, ok := l.Add(r); ok {
				for _, e := range g.Add(ln, t0) {
					if !batch.Fits(e) {
						_ = prepare(&batch)
						batch.Reset()
					}
					batch.Add(e, t0)
				}
			}
		}
		_ = prepare(&batch)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "lines/s")
}
