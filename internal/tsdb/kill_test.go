package tsdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

const killBatch = 100

// killChild is the process TestKill9LosesNothingAcknowledged kills: four
// writers append batches to their own series and print each acknowledged
// batch, while the background loop flushes every 30 ms.
func killChild(dir string, base time.Time) {
	db, err := Open(dir, Options{FlushInterval: 30 * time.Millisecond, MaintainInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			k := NewKey("Kill", "M", []Dim{{"W", strconv.Itoa(w)}})
			for b := 0; ; b++ {
				pts := make([]Point, killBatch)
				for i := range pts {
					pts[i] = Point{Key: k, T: base.Add(time.Duration(b*killBatch+i) * time.Second), Sample: ValueSample(float64(i), 1)}
				}
				if err := db.Append(context.Background(), pts); err != nil {
					fmt.Println("append:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d\n", w, b)
				out.Flush()
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}

func TestKill9LosesNothingAcknowledged(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	if dir := os.Getenv("TSDB_KILL_CHILD_DIR"); dir != "" {
		ms, _ := strconv.ParseInt(os.Getenv("TSDB_KILL_CHILD_BASE"), 10, 64)
		killChild(dir, time.UnixMilli(ms))
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	for round := 0; round < 3; round++ { // each round kills a process that recovered the previous one
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNothingAcknowledged$")
		cmd.Env = append(os.Environ(), "TSDB_KILL_CHILD_DIR="+dir, "TSDB_KILL_CHILD_BASE="+strconv.FormatInt(base.Add(time.Duration(round)*24*time.Hour/8).UnixMilli(), 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[int]int{} // writer → last acknowledged batch
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			var w, b int
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &w, &b); err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			acked[w] = b
			if n++; n == 150+round*50 {
				cmd.Process.Kill() // SIGKILL
				break
			}
		}
		for sc.Scan() { // acknowledgements already on their way count too
			var w, b int
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &w, &b); err == nil {
				acked[w] = b
			}
		}
		cmd.Wait()
		if n < 150+round*50 {
			t.Fatalf("child stopped after %d acknowledgements", n)
		}
		t.Logf("round %d: killed after %d acknowledgements; %d block files written by the child and before", round, n, len(blockFiles(t, dir)))
		db := mustOpen(t, dir, Options{MaintainInterval: -1})
		roundBase := base.Add(time.Duration(round) * 24 * time.Hour / 8)
		for w, last := range acked {
			k := NewKey("Kill", "M", []Dim{{"W", strconv.Itoa(w)}})
			bs := mustQuery(t, db, k, roundBase, roundBase.Add(3*time.Hour), killBatch*time.Second, "", false)
			got := map[int64]float64{}
			for _, b := range bs {
				got[b.T.UnixMilli()] = b.Count
			}
			for b := 0; b <= last; b++ {
				bt := roundBase.Add(time.Duration(b*killBatch) * time.Second)
				if got[bt.UnixMilli()] != killBatch {
					t.Fatalf("round %d writer %d: acknowledged batch %d (of %d) has %v of %d samples", round, w, b, last, got[bt.UnixMilli()], killBatch)
				}
			}
			if len(bs) > last+2 {
				t.Fatalf("round %d writer %d: %d batches stored, %d acknowledged", round, w, len(bs), last+1)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
