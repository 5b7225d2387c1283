package eventpattern

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// bruteForce is what a Set must answer: the ids whose pattern matches.
func bruteForce(t testing.TB, pats map[string]*Pattern, ev []byte) []string {
	v, err := parseEvent(new(jsonParser), ev)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id, p := range pats {
		if p.root.matchObject(&v) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestSetAgreesWithPatterns checks the index never changes an answer:
// over random ECS rules and events, with puts, replacements and deletes,
// Set.Match equals matching every pattern one by one.
func TestSetAgreesWithPatterns(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	s := NewSet()
	pats := map[string]*Pattern{}
	matched := 0
	for round := 0; round < 300; round++ {
		for k := 0; k < 5; k++ {
			id := fmt.Sprintf("rule-%d", r.Intn(400))
			switch r.Intn(5) {
			case 0:
				s.Delete(id)
				delete(pats, id)
			default:
				p := mustCompile(t, ecsRule(r))
				s.Put(id, p)
				pats[id] = p
			}
		}
		ev := ecsTaskEvent(r)
		got, err := s.Match(ev)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForce(t, pats, ev)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Set.Match = %v, want %v\nevent %s", round, got, want, ev)
		}
		matched += len(got)
	}
	if s.Len() != len(pats) {
		t.Errorf("Len = %d, want %d", s.Len(), len(pats))
	}
	if matched < 100 {
		t.Errorf("only %d matches over the run: the test does not exercise matching", matched)
	}
}

func TestSetIndexesSelectiveFields(t *testing.T) {
	s := NewSet()
	for i := 0; i < 3; i++ {
		s.Put(fmt.Sprint("c", i), mustCompile(t, fmt.Sprintf(`{"source":["aws.ecs"],"detail":{"clusterArn":[%q]}}`, ecsCluster(i))))
	}
	s.Put("always", mustCompile(t, `{"detail":{"group":[{"equals-ignore-case":"SERVICE:X"}]}}`))
	s.Put("pre", mustCompile(t, `{"source":["aws.ecs"],"detail":{"group":[{"prefix":"service:"},{"prefix":"serv"}]}}`))
	s.Put("arr", mustCompile(t, `{"resources":["a","b"]}`))
	want := "detail.clusterArn: " + ecsCluster(0) + "," + ecsCluster(1) + "," + ecsCluster(2) + "\n" +
		"source: aws.ecs\n" + // detail.group's prefixes would be one more lookup
		"resources: a,b\n"
	if got := s.String(); got != want {
		t.Errorf("index:\n%s\nwant\n%s", got, want)
	}
	s.Put("pre2", mustCompile(t, `{"source":["aws.ecs"],"detail":{"group":[{"prefix":"service:"},{"prefix":"serv"}]}}`))
	if got := s.String(); !strings.Contains(got, "detail.group: serv*,service:*\n") {
		t.Errorf("a second pattern on source should go to the prefixes:\n%s", got)
	}
	ids, err := s.Match([]byte(`{"source":"aws.ecs","resources":["b","a","b"],"detail":{"clusterArn":"` + ecsCluster(1) + `","group":"service:x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"always", "arr", "c1", "pre", "pre2"}) {
		t.Errorf("ids %v", ids)
	}
	for _, id := range []string{"arr", "c0", "c1", "c2", "pre", "nope"} {
		s.Delete(id)
	}
	s.Put("pre2", nil)
	if got := s.String(); got != "" {
		t.Errorf("index after deletes: %q", got)
	}
	if _, err := s.Match([]byte(`[1]`)); err == nil {
		t.Error("Set.Match accepted an array as event")
	}
}

// TestSetConcurrent runs Put, Delete and Match together (meant for -race).
func TestSetConcurrent(t *testing.T) {
	s := NewSet()
	r := rand.New(rand.NewSource(3))
	var rules []*Pattern
	var events [][]byte
	for i := 0; i < 50; i++ {
		rules = append(rules, mustCompile(t, ecsRule(r)))
		events = append(events, ecsTaskEvent(r))
	}
	done := make(chan bool)
	for w := 0; w < 3; w++ {
		go func(w int) {
			for i := 0; i < 200; i++ {
				id := fmt.Sprint(i % 20)
				if (i+w)%3 == 0 {
					s.Delete(id)
				} else {
					s.Put(id, rules[(i*7+w)%len(rules)])
				}
				if _, err := s.Match(events[(i+w)%len(events)]); err != nil {
					t.Error(err)
				}
			}
			done <- true
		}(w)
	}
	for w := 0; w < 3; w++ {
		<-done
	}
}

func TestSetIndexesWildcardsByTheirPrefix(t *testing.T) {
	s := NewSet()
	s.Put("w", mustCompile(t, `{"detail":{"taskDefinitionArn":[{"wildcard":"arn:aws:ecs:*:task-definition/web-*"}]}}`))
	s.Put("x", mustCompile(t, `{"detail":{"taskDefinitionArn":[{"wildcard":"arn:aws:ecs:us-east-1:1:task-definition/web:1"}]}}`))
	s.Put("lead", mustCompile(t, `{"detail":{"taskDefinitionArn":[{"wildcard":"*web*"}]}}`))
	if got, want := s.String(), "detail.taskDefinitionArn: arn:aws:ecs:*,arn:aws:ecs:us-east-1:1:task-definition/web:1\n"; got != want {
		t.Errorf("index %q, want %q", got, want)
	}
	for ev, want := range map[string][]string{
		`{"detail":{"taskDefinitionArn":"arn:aws:ecs:us-east-1:1:task-definition/web:1"}}`:   {"lead", "x"},
		`{"detail":{"taskDefinitionArn":"arn:aws:ecs:us-east-1:1:task-definition/web-2:1"}}`: {"lead", "w"},
		`{"detail":{"taskDefinitionArn":"arn:aws:ecs:us-east-1:1:task-definition/api:1"}}`:   nil,
	} {
		ids, err := s.Match([]byte(ev))
		if err != nil || !slices.Equal(ids, want) {
			t.Errorf("%s: %v %v, want %v", ev, ids, err, want)
		}
	}
}

func TestSetIndexesSuffixes(t *testing.T) {
	s := NewSet()
	s.Put("jar", mustCompile(t, `{"file":[{"wildcard":"*/bin/*.jar"}]}`))
	s.Put("prod", mustCompile(t, `{"file":[{"suffix":"-prod"},{"suffix":".jar"}]}`))
	s.Put("mixed", mustCompile(t, `{"file":[{"suffix":".jar"},{"prefix":"/"}]}`)) // not indexable
	if got, want := s.String(), "file: *-prod,*.jar\n"; got != want {
		t.Errorf("index %q, want %q", got, want)
	}
	for ev, want := range map[string][]string{
		`{"file":"/usr/bin/x.jar"}`:  {"jar", "mixed", "prod"},
		`{"file":"/usr/lib/x.jar"}`:  {"mixed", "prod"},
		`{"file":"db-prod"}`:         {"prod"},
		`{"file":"jar"}`:             nil,
		`{"file":["a.jar","b.jar"]}`: {"mixed", "prod"},
	} {
		ids, err := s.Match([]byte(ev))
		if err != nil || !slices.Equal(ids, want) {
			t.Errorf("%s: %v %v, want %v", ev, ids, err, want)
		}
	}
}
