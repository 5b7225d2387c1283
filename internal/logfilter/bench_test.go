package logfilter

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// benchLines makes n log lines of one kind, one in ten an error.
func benchLines(kind string, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		level, status, bytes := "INFO", 200, 512+i*37%4000
		if i%10 == 3 {
			level, status = "ERROR", 404+(i/10)%2
		}
		switch kind {
		case "text":
			lines[i] = fmt.Sprintf("2026-12-02T02:%02d:%02d.%03dZ %s [worker-%d] request handled path=/api/v1/items/%d status=%d latency_ms=%d",
				i/60%60, i%60, i%1000, level, i%8, i, status, i%300)
		case "json":
			lines[i] = fmt.Sprintf(`{"time":"2026-12-02T02:%02d:%02d.%03dZ","level":"%s","msg":"request handled","path":"/api/v1/items/%d",`+
				`"status":%d,"latency":%d.5,"user":{"id":%d,"name":"user%d"},"tags":["web","v1"]}`,
				i/60%60, i%60, i%1000, level, i, status, i%300, i%50, i%50)
		case "fields":
			page := "index.html"
			if i%3 == 0 {
				page = "logo.png"
			}
			lines[i] = fmt.Sprintf(`10.0.%d.%d - user%d [02/Dec/2026:02:%02d:%02d +0000] "GET /%s HTTP/1.1" %d %d`,
				i%256, i*7%256, i%50, i/60%60, i%60, page, status, bytes)
		}
	}
	return lines
}

// BenchmarkMatch measures Match over typical text, JSON and
// space-delimited lines, one event per operation, with the baselines of
// the same run: strings.Contains for a term, Go's regexp for the same
// regular expression, and encoding/json (decode into a map, then look
// the fields up) for the JSON pattern.
func BenchmarkMatch(b *testing.B) {
	text, js, fields := benchLines("text", 1000), benchLines("json", 1000), benchLines("fields", 1000)
	run := func(name string, lines []string, match func(string) bool) {
		b.Run(name, func(b *testing.B) {
			runtime.GC() // not the garbage of benchLines, nor of the last run
			n := 0
			i := 0
			for b.Loop() {
				if match(lines[i]) {
					n++
				}
				i++
				if i == len(lines) {
					i = 0
				}
			}
			if n == 0 {
				b.Fatal("nothing matched")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}

	term := MustParse("ERROR")
	run("term/logfilter", text, term.Match)
	run("term/strings.Contains", text, func(s string) bool { return strings.Contains(s, "ERROR") })

	terms := MustParse(`ERROR "status=404" -timeout`)
	run("terms3/logfilter", text, terms.Match)
	run("terms3/strings.Contains", text, func(s string) bool {
		return strings.Contains(s, "ERROR") && strings.Contains(s, "status=404") && !strings.Contains(s, "timeout")
	})

	rePat := MustParse(`%status=40\d\slatency_ms=\d+$%`)
	re := regexp.MustCompile(`status=40\d\slatency_ms=\d+$`)
	run("regex/logfilter", text, rePat.Match)
	run("regex/regexp", text, re.MatchString)

	jsPat := MustParse(`{ $.level = "ERROR" && $.latency > 100 && $.user.id < 40 }`)
	run("json/logfilter", js, jsPat.Match)
	run("json/encoding-json", js, func(s string) bool {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return false
		}
		lat, _ := m["latency"].(float64)
		user, _ := m["user"].(map[string]any)
		id, _ := user["id"].(float64)
		return m["level"] == "ERROR" && lat > 100 && id < 40
	})

	fPat := MustParse(`[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes > 1000]`)
	run("fields/logfilter", fields, fPat.Match)
	fEll := MustParse(`[..., status_code = 4* && status_code != 403, bytes]`)
	run("fields-ellipsis/logfilter", fields, fEll.Match)
}
