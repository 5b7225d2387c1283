// Package tsdb is the time-series store behind Berth's CloudWatch metrics.
// (First, naive version: everything in memory, a JSON-lines WAL fsync'd per
// Append. Replaced by compressed chunks and blocks; see docs/metrics-storage.md.)
package tsdb

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

type naiveSample struct {
	T    int64
	S    Sample
	Unit string
}

type naiveSeries struct {
	key       SeriesKey
	samples   []naiveSample
	lastWrite time.Time
	units     []string
}

type walRec struct {
	Key  SeriesKey
	T    int64
	S    Sample
	Unit string
	W    int64
}

// DB is an open time-series store.
type DB struct {
	opt    Options
	mu     sync.RWMutex
	series map[string]*naiveSeries
	f      *os.File
}

// Open opens (creating if needed) the store in dir and recovers its WAL.
func Open(dir string, opt Options) (*DB, error) {
	opt = opt.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db := &DB{opt: opt, series: map[string]*naiveSeries{}}
	p := filepath.Join(dir, "naive.wal")
	if f, err := os.Open(p); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<26)
		for sc.Scan() {
			var r walRec
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				break
			}
			db.add(r)
		}
		f.Close()
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	db.f = f
	return db, nil
}

func (db *DB) add(r walRec) {
	ks := r.Key.String()
	s := db.series[ks]
	if s == nil {
		s = &naiveSeries{key: r.Key}
		db.series[ks] = s
	}
	s.samples = append(s.samples, naiveSample{r.T, r.S, r.Unit})
	s.lastWrite = time.UnixMilli(r.W)
	if !slices.Contains(s.units, r.Unit) {
		s.units = append(s.units, r.Unit)
	}
}

// Append stores points durably.
func (db *DB) Append(ctx context.Context, pts []Point) error {
	now := db.opt.Now()
	var buf []byte
	db.mu.Lock()
	defer db.mu.Unlock()
	n := len(db.series)
	for _, p := range pts {
		if _, ok := db.series[p.Key.String()]; !ok {
			n++
			if n > db.opt.MaxSeries {
				return errs.E(errs.LimitExceeded, "the maximum number of metrics (%d) is reached", db.opt.MaxSeries)
			}
		}
	}
	var recs []walRec
	for _, p := range pts {
		r := walRec{Key: NewKey(p.Key.Namespace, p.Key.MetricName, p.Key.Dims), T: p.T.UnixMilli(), S: p.Sample, Unit: p.Unit, W: now.UnixMilli()}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
		recs = append(recs, r)
	}
	if _, err := db.f.Write(buf); err != nil {
		return err
	}
	if err := db.f.Sync(); err != nil {
		return err
	}
	for _, r := range recs {
		db.add(r)
	}
	return nil
}

// Query returns the non-empty buckets of key in [from, to).
func (db *DB) Query(key SeriesKey, from, to time.Time, period time.Duration, unit string, wantValues bool) ([]Bucket, error) {
	if period <= 0 {
		return nil, errs.E(errs.Invalid, "period must be positive")
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	s := db.series[key.String()]
	if s == nil {
		return nil, nil
	}
	pm := period.Milliseconds()
	m := map[int64]*Bucket{}
	for _, x := range s.samples {
		if x.T < from.UnixMilli() || x.T >= to.UnixMilli() || (unit != "" && x.Unit != unit) {
			continue
		}
		bt := x.T - ((x.T%pm)+pm)%pm
		b := m[bt]
		if b == nil {
			b = &Bucket{T: time.UnixMilli(bt), Min: math.Inf(1), Max: math.Inf(-1)}
			m[bt] = b
		}
		b.Min = math.Min(b.Min, x.S.Min)
		b.Max = math.Max(b.Max, x.S.Max)
		b.Sum += x.S.Sum
		b.Count += x.S.Count
		if wantValues && x.S.isValue() {
			b.Values = append(b.Values, ValueCount{x.S.Min, x.S.Count})
		}
	}
	var out []Bucket
	for _, b := range m {
		slices.SortFunc(b.Values, func(a, c ValueCount) int {
			if a.V < c.V {
				return -1
			} else if a.V > c.V {
				return 1
			}
			return 0
		})
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Bucket) int { return a.T.Compare(b.T) })
	return out, nil
}

// Series lists known series of a namespace ("" = all), sorted by key string.
func (db *DB) Series(namespace string) []SeriesInfo {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []SeriesInfo
	for _, s := range db.series {
		if namespace == "" || s.key.Namespace == namespace {
			out = append(out, SeriesInfo{Key: s.key, LastWrite: s.lastWrite, Units: slices.Clone(s.units)})
		}
	}
	slices.SortFunc(out, func(a, b SeriesInfo) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// Close closes the DB.
func (db *DB) Close() error { return db.f.Close() }
