package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// equalExpr compares two expressions structurally, ignoring compiled
// arguments.
func equalExpr(a, b Expr) bool {
	switch a := a.(type) {
	case *And:
		b, ok := b.(*And)
		return ok && equalExpr(a.L, b.L) && equalExpr(a.R, b.R)
	case *Or:
		b, ok := b.(*Or)
		return ok && equalExpr(a.L, b.L) && equalExpr(a.R, b.R)
	case *Not:
		b, ok := b.(*Not)
		return ok && equalExpr(a.X, b.X)
	case *Cond:
		b, ok := b.(*Cond)
		return ok && a.Subject == b.Subject && a.Op == b.Op && slices.Equal(a.Args, b.Args)
	}
	return false
}

// t2small is the instance most expression tests run against.
func t2small() *Instance {
	return &Instance{
		ID: "1b2c3d4e", ARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/default/1b2c3d4e",
		EC2InstanceID: "i-abcd1234", Status: StatusActive, AgentConnected: true, AgentVersion: "1.14.4",
		RegisteredAt: time.Date(2018, 2, 12, 22, 28, 28, 500_000_000, time.UTC),
		Attributes: map[string]string{
			"ecs.instance-type": "t2.small", "ecs.availability-zone": "us-east-1a", "ecs.os-type": "linux",
			"stack": "prod", "flag": "", "weight": "10",
		},
		RunningTasksCount: 1,
		Tasks:             []TaskInfo{{Group: "service:production"}, {Group: "database", Stopping: true}},
	}
}

// TestDocExamples parses every expression in ECS's documentation (the
// cluster query language page, the constraint and ListContainerInstances
// filter examples) and checks the canonical form and the result on
// t2small.
func TestDocExamples(t *testing.T) {
	for _, tc := range []struct {
		expr, canonical string
		want            bool
	}{
		{"attribute:ecs.instance-type == t2.small", "attribute:ecs.instance-type == t2.small", true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", false},
		{"task:group == service:production", "task:group == service:production", true},
		{"not(task:group == database)", "not task:group == database", true},
		{"runningTasksCount == 1", "runningTasksCount == 1", true},
		{"agentVersion < 1.14.5", "agentVersion < 1.14.5", true},
		{"registeredAt < 2018-02-13", "registeredAt < 2018-02-13", true},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", "ec2InstanceId in [i-abcd1234, i-wxyx7890]", true},
		{"attribute:ecs.instance-type =~ t2.*", "attribute:ecs.instance-type =~ t2.*", true},
		{"task:group == databases", "task:group == databases", false},
		{"attribute:ecs.instance-type == g2.2xlarge", "attribute:ecs.instance-type == g2.2xlarge", false},
		{"attribute:stack == prod", "attribute:stack == prod", true},
		{"attribute:stack != prod", "attribute:stack != prod", false},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", "attribute:ecs.instance-type in [t2.small, t2.medium]", true},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", true},
		{"(attribute:ecs.instance-type == t2.small or attribute:ecs.instance-type == t2.medium) and attribute:stack exists",
			"(attribute:ecs.instance-type == t2.small or attribute:ecs.instance-type == t2.medium) and attribute:stack exists", true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and runningTasksCount < 4",
			"attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and runningTasksCount < 4", true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := e.String(); got != tc.canonical {
				t.Errorf("String() = %q, want %q", got, tc.canonical)
			}
			if got := e.Match(t2small()); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSpellings checks that every spelling of an operator and of the
// boolean operators parses to the same thing.
func TestSpellings(t *testing.T) {
	for _, group := range [][]string{
		{"attribute:a == b", "attribute:a equals b", "attribute:a EQUALS b", "attribute:a==b", "attribute:a == 'b'", `attribute:a == "b"`},
		{"attribute:a != b", "attribute:a not_equals b", "attribute:a!=b"},
		{"runningTasksCount > 1", "runningTasksCount greater_than 1", "runningTasksCount>1"},
		{"runningTasksCount >= 1", "runningTasksCount greater_than_equal 1", "runningTasksCount>=1"},
		{"runningTasksCount < 1", "runningTasksCount less_than 1", "runningTasksCount<1"},
		{"runningTasksCount <= 1", "runningTasksCount less_than_equal 1", "runningTasksCount<=1"},
		{"attribute:a exists", "attribute:a EXISTS"},
		{"attribute:a !exists", "attribute:a not_exists"},
		{"attribute:a in [b, c]", "attribute:a in[b,c]", "attribute:a IN [ 'b' , \"c\" ]"},
		{"attribute:a !in [b, c]", "attribute:a not_in [b, c]", "attribute:a !in[b,c]"},
		{"attribute:a =~ b.*", "attribute:a matches b.*", "attribute:a=~b.*"},
		{"attribute:a !~ b.*", "attribute:a not_matches b.*", "attribute:a!~b.*"},
		{"attribute:a exists and attribute:b exists", "attribute:a exists && attribute:b exists", "attribute:a exists AND attribute:b exists", "(attribute:a exists)&&(attribute:b exists)"},
		{"attribute:a exists or attribute:b exists", "attribute:a exists || attribute:b exists", "attribute:a exists Or attribute:b exists"},
		{"not attribute:a exists", "!attribute:a exists", "! attribute:a exists", "NOT(attribute:a exists)", "((not ((attribute:a exists))))"},
	} {
		want := MustParse(group[0])
		for _, s := range group[1:] {
			got, err := Parse(s)
			if err != nil {
				t.Errorf("Parse(%q): %v", s, err)
				continue
			}
			if !equalExpr(got, want) {
				t.Errorf("Parse(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// TestPrecedence checks that not binds tighter than and, and tighter than
// or, that both are left-associative, and that String keeps the meaning.
func TestPrecedence(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attribute:a exists or attribute:b exists and attribute:c exists", "attribute:a exists or attribute:b exists and attribute:c exists"},
		{"(attribute:a exists or attribute:b exists) and attribute:c exists", "(attribute:a exists or attribute:b exists) and attribute:c exists"},
		{"attribute:a exists and (attribute:b exists and attribute:c exists)", "attribute:a exists and (attribute:b exists and attribute:c exists)"},
		{"(attribute:a exists and attribute:b exists) and attribute:c exists", "attribute:a exists and attribute:b exists and attribute:c exists"},
		{"attribute:a exists or (attribute:b exists or attribute:c exists)", "attribute:a exists or (attribute:b exists or attribute:c exists)"},
		{"not attribute:a exists and attribute:b exists", "not attribute:a exists and attribute:b exists"},
		{"not (attribute:a exists and attribute:b exists)", "not (attribute:a exists and attribute:b exists)"},
		{"not not attribute:a exists", "not not attribute:a exists"},
	} {
		e := MustParse(tc.in)
		if got := e.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
	e := MustParse("attribute:a exists or attribute:b exists and attribute:c exists")
	if or, ok := e.(*Or); !ok || !isAndNode(or.R) {
		t.Errorf("and does not bind tighter than or: %#v", e)
	}
}

func isAndNode(e Expr) bool { _, ok := e.(*And); return ok }

func TestMatch(t *testing.T) {
	noTasks := t2small()
	noTasks.Tasks, noTasks.RunningTasksCount = nil, 0
	disconnected := t2small()
	disconnected.AgentConnected = false
	bare := &Instance{ID: "bare", Status: StatusActive}
	web := t2small()
	web.Tasks = []TaskInfo{{Group: "service:web"}}

	for _, tc := range []struct {
		expr string
		inst *Instance
		want bool
	}{
		// agentConnected
		{"agentConnected == true", t2small(), true},
		{"agentConnected == TRUE", t2small(), true},
		{"agentConnected == false", disconnected, true},
		{"agentConnected != true", disconnected, true},
		{"agentConnected in [false]", t2small(), false},
		{"agentConnected =~ t.*", t2small(), true},
		{"agentConnected !~ t.*", disconnected, true},
		// agentVersion: numeric, not lexical, and missing parts are 0
		{"agentVersion < 1.14.5", t2small(), true},
		{"agentVersion >= 1.14.4", t2small(), true},
		{"agentVersion == 1.14.4.0", t2small(), true},
		{"agentVersion > 1.9", t2small(), true},
		{"agentVersion > 1.9", &Instance{AgentVersion: "1.10.0-1"}, true},
		{"agentVersion != 1.14.4", t2small(), false},
		{"agentVersion > 0", bare, false},
		{"agentVersion != 1", bare, false},
		// attribute: glob on ==, full-match regex, numbers compare as numbers
		{"attribute:ecs.instance-type == t2.*", t2small(), true},
		{"attribute:ecs.instance-type == *.small", t2small(), true},
		{"attribute:ecs.instance-type == t*.s*l", t2small(), true},
		{"attribute:ecs.instance-type == t3.*", t2small(), false},
		{"attribute:ecs.instance-type != t3.*", t2small(), true},
		{"attribute:ecs.instance-type in [m5.*, t2.*]", t2small(), true},
		{"attribute:ecs.instance-type !in [m5.*, t2.*]", t2small(), false},
		{"attribute:ecs.instance-type =~ t2", t2small(), false},
		{"attribute:ecs.instance-type =~ '(t2|t3)\\.(micro|small)'", t2small(), true},
		{"attribute:ecs.instance-type =~ '(?i)T2\\..*'", t2small(), true},
		{"attribute:ecs.availability-zone =~ us-east-1[ab]", t2small(), true},
		{"attribute:ecs.availability-zone !~ us-east-1[ab]", t2small(), false},
		{"attribute:weight > 9", t2small(), true},
		{"attribute:weight < 9", t2small(), false},
		{"attribute:weight >= 10.0", t2small(), true},
		{"attribute:stack > pro", t2small(), true},
		{"attribute:flag exists", t2small(), true},
		{"attribute:flag == ''", t2small(), true},
		{"attribute:nope exists", t2small(), false},
		{"attribute:nope !exists", t2small(), true},
		{"attribute:nope == x", t2small(), false},
		{"attribute:nope != x", t2small(), false},
		{"attribute:nope !in [x]", t2small(), false},
		{"attribute:nope !~ x", t2small(), false},
		{"not attribute:nope == x", t2small(), true},
		// ec2InstanceId
		{"ec2InstanceId == i-abcd1234", t2small(), true},
		{"ec2InstanceId == i-*", t2small(), true},
		{"ec2InstanceId =~ i-[0-9a-f]{8}", t2small(), true},
		{"ec2InstanceId != i-abcd1234", t2small(), false},
		{"ec2InstanceId != i-abcd1234", bare, false},
		// registeredAt: a date compares by day, a time by second, in UTC
		{"registeredAt < 2018-02-13", t2small(), true},
		{"registeredAt == 2018-02-12", t2small(), true},
		{"registeredAt > 2018-02-12", t2small(), false},
		{"registeredAt >= 2018-02-12", t2small(), true},
		{"registeredAt == 2018-02-12T22:28:28Z", t2small(), true},
		{"registeredAt == 2018-02-12T22:28:28", t2small(), true},
		{"registeredAt == 2018-02-13T00:28:28+02:00", t2small(), true},
		{"registeredAt < 2018-02-12T22:28:28Z", t2small(), false},
		{"registeredAt > 2018-02-12T22:28:27Z", t2small(), true},
		{"registeredAt < 2030-01-01", bare, false},
		// runningTasksCount
		{"runningTasksCount == 1", t2small(), true},
		{"runningTasksCount < 1", noTasks, true},
		{"runningTasksCount > 0", noTasks, false},
		{"runningTasksCount != 0", noTasks, false},
		{"runningTasksCount != 1", noTasks, true},
		// task:group: some active task is in the group; stopping tasks do not count
		{"task:group == service:production", t2small(), true},
		{"task:group == database", t2small(), false},
		{"task:group == service:*", t2small(), true},
		{"task:group =~ service:.*", t2small(), true},
		{"task:group exists", t2small(), true},
		{"task:group exists", noTasks, false},
		{"task:group != service:production", t2small(), false},
		{"task:group != service:production", web, true},
		{"task:group != service:production", noTasks, false},
		{"not task:group == service:production", noTasks, true},
		{"task:group in [a, service:production]", t2small(), true},
		{"task:group !in [a, b]", t2small(), true},
		// compound
		{"attribute:stack == prod and not task:group == database", t2small(), true},
		{"attribute:stack == dev || runningTasksCount == 1", t2small(), true},
		{"!(attribute:stack == dev || runningTasksCount == 1)", t2small(), false},
		{"attribute:stack == dev && runningTasksCount == 1", t2small(), false},
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.expr, err)
			continue
		}
		if got := e.Match(tc.inst); got != tc.want {
			t.Errorf("%q on %s: Match = %v, want %v", tc.expr, tc.inst.ID, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		column int
		msg    string
	}{
		{"", 1, "empty"},
		{"   ", 1, "empty"},
		{"foo == bar", 1, `unknown subject "foo"`},
		{"instanceType == t2.small", 1, "unknown subject"},
		{"attribute: == x", 1, "needs a name"},
		{"attribute:a@b == x", 12, `unexpected '@'`},
		{"attribute:" + strings.Repeat("a", 129) + " exists", 1, "at most 128"},
		{"attribute:a", 12, "expected an operator"},
		{"attribute:a = b", 13, "expected an operator"},
		{"attribute:a equalz b", 13, `"equalz"`},
		{"attribute:a ==", 15, "expected a value after =="},
		{"attribute:a == [b]", 16, "takes one value, not a list"},
		{"attribute:a in b", 16, "takes a list"},
		{"attribute:a in []", 17, "empty"},
		{"attribute:a in [b,]", 19, "expected a value"},
		{"attribute:a in [b c]", 19, "expected , or ]"},
		{"attribute:a in [b", 18, "expected , or ]"},
		{"attribute:a == 'b", 16, "unterminated"},
		{"attribute:a exists b", 20, "expected and, or"},
		{"attribute:a exists and", 23, "expected a condition"},
		{"(attribute:a exists", 1, "unclosed parenthesis"},
		{"attribute:a exists)", 19, "unexpected ')'"},
		{"attribute:a exists or or attribute:b exists", 23, `unknown subject "or"`},
		{"attribute:a == b &&", 20, "expected a condition"},
		{"attribute:a =~ '('", 16, "invalid regular expression"},
		{"attribute:a =~ '(?<=a)b'", 16, "invalid regular expression"},
		{"agentConnected == yes", 19, "true or false"},
		{"agentConnected > true", 16, "cannot be used with agentConnected"},
		{"agentConnected exists", 16, "cannot be used"},
		{"agentVersion == latest", 17, "version"},
		{"agentVersion in [1.0]", 14, "cannot be used"},
		{"agentVersion =~ 1.*", 14, "cannot be used"},
		{"registeredAt < yesterday", 16, "date"},
		{"registeredAt < 2018-02-30", 16, "date"},
		{"registeredAt < 2018-02-13T10:00", 16, "date"},
		{"runningTasksCount < -1", 21, "whole number"},
		{"runningTasksCount < 1.5", 21, "whole number"},
		{"runningTasksCount exists", 19, "cannot be used"},
		{"ec2InstanceId > i-1", 15, "cannot be used"},
		{"task:group < a", 12, "cannot be used"},
		{"not", 4, "expected a condition"},
		{"runningTasksCount < 1 and runningTasksCount <", 46, "expected a value"},
		{strings.Repeat("(", 2001), 1, "2001 characters"},
	} {
		_, err := Parse(tc.expr)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tc.expr)
			continue
		}
		if !errs.Is(err, errs.Invalid) || errs.ReasonOf(err) != InvalidExpression {
			t.Errorf("Parse(%q): kind %v reason %q, want invalid %q", tc.expr, errs.KindOf(err), errs.ReasonOf(err), InvalidExpression)
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q): %v does not wrap a *SyntaxError", tc.expr, err)
			continue
		}
		if se.Column != tc.column || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Parse(%q) = %v (column %d), want column %d and %q", tc.expr, err, se.Column, tc.column, tc.msg)
		}
	}
}

func TestLengthLimit(t *testing.T) {
	pad := "attribute:a == " + strings.Repeat("x", MaxExpressionLength-len("attribute:a == "))
	if _, err := Parse(pad); err != nil {
		t.Errorf("%d characters: %v", len(pad), err)
	}
	if _, err := Parse(pad + "x"); err == nil {
		t.Errorf("%d characters accepted", len(pad)+1)
	}
	// The limit counts characters, not bytes.
	wide := "attribute:a == " + strings.Repeat("é", MaxExpressionLength-len("attribute:a == "))
	if _, err := Parse(wide); err != nil {
		t.Errorf("%d characters in %d bytes: %v", MaxExpressionLength, len(wide), err)
	}
}

// TestQuoting checks that values needing quotes print with them and read
// back the same.
func TestQuoting(t *testing.T) {
	for _, v := range []string{"", "a b", "a,b", "[x]", "(x)", `it's`, `say "hi"`, `back\slash`, `trailing\`, `\'`, "tab\there", "ünïcödé", "a&&b", "!x", "==", "\xff\xfe"} {
		c := &Cond{Subject: Subject{Kind: SubjectAttribute, Attribute: "a"}, Op: OpEq, Args: []string{v}}
		e, err := Parse(c.String())
		if err != nil {
			t.Errorf("value %q printed as %s: %v", v, c, err)
			continue
		}
		if !equalExpr(e, c) {
			t.Errorf("value %q printed as %s reads back as %s", v, c, e)
		}
	}
	// Inside quotes a backslash escapes only a backslash or a quote.
	e := MustParse(`attribute:a == 'a\.b\\c\'d\"e'`)
	if got := e.(*Cond).Args[0]; got != `a\.b\c'd"e` {
		t.Errorf("quoted value = %q", got)
	}
}

func TestHandBuiltCond(t *testing.T) {
	c := &Cond{Subject: Subject{Kind: SubjectRunningTasksCount}, Op: OpLt, Args: []string{"2"}}
	if !c.Match(t2small()) {
		t.Error("hand-built runningTasksCount < 2 does not match")
	}
	bad := &Cond{Subject: Subject{Kind: SubjectRunningTasksCount}, Op: OpLt, Args: []string{"two"}}
	if bad.Match(t2small()) {
		t.Error("a hand-built condition with a bad argument matches")
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, v string
		want       bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a*c", "ac", true}, {"a*c", "abbc", true}, {"a*c", "abcd", false}, {"a*a", "a", false},
		{"*b*", "abc", true}, {"*x*", "abc", false}, {"a**b", "ab", true}, {"abc", "abc", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false},
	} {
		if got := glob(tc.pattern, tc.v); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.v, got, tc.want)
		}
	}
}
