package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// MeasureRawWrites writes n keys of 256 bytes one after the other, each in
// its own Txn, and returns the 50th and 99th percentile of their latency.
// The keys live under a fresh "/berth/bench/<random>/" prefix, deleted at
// the end.
func MeasureRawWrites(ctx context.Context, s Store, n int) (p50, p99 time.Duration, err error) {
	if n <= 0 {
		return 0, 0, errs.E(errs.Invalid, "store: measure: need at least one write, got %d", n)
	}
	var tag [8]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return 0, 0, err
	}
	prefix := "/berth/bench/" + hex.EncodeToString(tag[:]) + "/"
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultRequestTimeout)
		defer cancel()
		if _, cerr := s.Txn(cctx, nil, DeletePrefix(prefix)); cerr != nil && err == nil {
			err = cerr
		}
	}()

	value := make([]byte, 256)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	lat := make([]time.Duration, n)
	for i := range n {
		key := fmt.Sprintf("%s%08d", prefix, i)
		start := time.Now()
		if _, err := s.Txn(ctx, nil, Put(key, value)); err != nil {
			return 0, 0, err
		}
		lat[i] = time.Since(start)
	}
	p50, p99 = Percentile(lat, 50), Percentile(lat, 99)
	return p50, p99, nil
}

// Percentile returns the p-th percentile (0..100, nearest rank) of ds; ds
// is sorted in place. Zero for an empty slice.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p/100*float64(len(ds)))) - 1
	rank = max(0, min(rank, len(ds)-1))
	return ds[rank]
}
