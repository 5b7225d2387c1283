package placement

import (
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, and that an expression it
// accepts prints to a canonical form that parses back to the same tree
// and prints the same again. Every accepted expression is also evaluated,
// which must not panic either.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type == t2.small",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
		"task:group == service:production",
		"not(task:group == database)",
		"runningTasksCount == 1",
		"agentVersion < 1.14.5",
		"registeredAt < 2018-02-13",
		"registeredAt >= 2018-06-18T22:28:28+00:00 || registeredAt != 2018-06-18T22:28:28Z",
		"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
		"agentConnected != false && !(attribute:x !exists)",
		"(attribute:a exists or attribute:b not_exists) and not attribute:c =~ '(x|y)\\\\.z'",
		`attribute:a == "it's" || attribute:a !in ['a\'b', "c\"d", e]`,
		"attribute:a=~us-east-1[ab] AND task:group !~ service:.*",
		"attribute:weight greater_than_equal 10.5",
		"(((attribute:a exists)))",
		"attribute:a ==",
		"attribute:a in [",
		"'",
	} {
		f.Add(s)
	}
	insts := []*Instance{
		t2small(),
		{ID: "bare"},
		{ID: "odd", AgentVersion: "v2", EC2InstanceID: "*", RegisteredAt: time.Unix(0, 1),
			Attributes: map[string]string{"a": "[", "b": "1e308", "weight": "NaN"},
			Tasks:      []TaskInfo{{Group: ""}, {Group: "*"}}},
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		for _, inst := range insts {
			e.Match(inst)
		}
		printed := e.String()
		again, err := parse(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, printed, err)
		}
		if !equalExpr(e, again) {
			t.Fatalf("%q printed as %q, which parses to %q", s, printed, again)
		}
		if again.String() != printed {
			t.Fatalf("%q printed as %q, then as %q", s, printed, again.String())
		}
	})
}
