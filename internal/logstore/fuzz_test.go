package logstore

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegment opens a store whose only segment holds arbitrary bytes after
// a valid record: Open must cut the file at the last valid record and
// never fail or panic because of what follows.
func FuzzSegment(f *testing.F) {
	good := appendEvent(nil, 2, 1, 5, 6, "hello") // group id 1, stream id 2
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add(appendEvent(nil, 2, 2, 7, 8, "second"))
	f.Add(appendRecord(nil, []byte{0xff, 0xff}))
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		s, err := Open(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateGroup(GroupInfo{Name: "g"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateStream("g", "s", 1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		segs, _ := filepath.Glob(filepath.Join(dir, "groups", "*"))
		if len(segs) != 1 {
			t.Fatalf("group dirs: %v", segs)
		}
		path := filepath.Join(segs[0], segName(0))
		if err := os.WriteFile(path, append(append([]byte{}, good...), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err = Open(Config{Dir: dir})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		res, err := s.Query(Query{Group: "g", Limit: 1000})
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if len(res.Events) == 0 || res.Events[0].Message != "hello" {
			t.Fatalf("the valid first record was lost: %+v", res.Events)
		}
		// What is left on disk reads back cleanly.
		b, _ := os.ReadFile(path)
		r := bytes.NewReader(b)
		for {
			p, err := readRecord(r, nil)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("segment not cut at a record boundary: %v", err)
			}
			if _, ok := decodeEvent(p); !ok {
				t.Fatal("undecodable record kept")
			}
		}
	})
}
