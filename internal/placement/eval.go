package placement

import (
	"strconv"
	"strings"
	"time"
)

// Match reports whether both sides match.
func (e *And) Match(inst *Instance) bool { return e.L.Match(inst) && e.R.Match(inst) }

// Match reports whether either side matches.
func (e *Or) Match(inst *Instance) bool { return e.L.Match(inst) || e.R.Match(inst) }

// Match reports whether X does not match.
func (e *Not) Match(inst *Instance) bool { return !e.X.Match(inst) }

// Match evaluates the condition against inst.
//
// A subject has a set of values on an instance: none or one for most
// subjects (an attribute the instance lacks, an empty ec2InstanceId or
// agentVersion, a zero registeredAt have none), and one per active task
// for task:group. exists is true when the set is not empty. A positive
// operator (==, >, >=, <, <=, in, =~) is true when some value satisfies
// it. A negative operator (!=, !in, !~) is true when the set is not empty
// and no value satisfies its positive counterpart: an instance without
// the attribute stack matches neither attribute:stack == prod nor
// attribute:stack != prod, and task:group != database holds on instances
// that run tasks, none of them in database. Use not (...) for "no value".
func (c *Cond) Match(inst *Instance) bool {
	prep := c.prep
	if prep == nil {
		p, _, msg := prepare(c)
		if msg != "" {
			return false
		}
		prep = p
	}
	pos, neg := c.Op.negated()
	n, hit := 0, false
	if c.Subject.Kind == SubjectTaskGroup {
		for _, t := range inst.Tasks {
			if t.Stopping || t.Group == "" {
				continue
			}
			n++
			if c.Op != OpExists && c.Op != OpNotExists && c.test(prep, pos, inst, t.Group) {
				hit = true
				break
			}
		}
	} else if v, ok := c.value(inst); ok {
		n = 1
		hit = c.Op != OpExists && c.Op != OpNotExists && c.test(prep, pos, inst, v)
	}
	switch {
	case c.Op == OpExists:
		return n > 0
	case c.Op == OpNotExists:
		return n == 0
	case neg:
		return n > 0 && !hit
	}
	return hit
}

// value returns the subject's value on inst, for every subject but
// task:group; ok is false when the instance has none. registeredAt and
// runningTasksCount are compared from inst directly, so their value is
// only the fallback text a regular expression would see.
func (c *Cond) value(inst *Instance) (v string, ok bool) {
	switch c.Subject.Kind {
	case SubjectAgentConnected:
		return strconv.FormatBool(inst.AgentConnected), true
	case SubjectAgentVersion:
		return inst.AgentVersion, inst.AgentVersion != ""
	case SubjectAttribute:
		v, ok = inst.Attributes[c.Subject.Attribute]
		return v, ok
	case SubjectEC2InstanceID:
		return inst.EC2InstanceID, inst.EC2InstanceID != ""
	case SubjectRegisteredAt:
		return "", !inst.RegisteredAt.IsZero()
	case SubjectRunningTasksCount:
		return "", true
	}
	return "", false
}

// test applies the positive operator op to one value of inst.
func (c *Cond) test(prep *prepared, op Op, inst *Instance, v string) bool {
	if op == OpMatches {
		return prep.re.MatchString(v)
	}
	for _, a := range prep.args {
		var ok bool
		if op == OpEq || op == OpIn {
			ok = c.equal(a, inst, v)
		} else {
			cmp, comparable := c.compare(a, inst, v)
			ok = comparable && ordered(op, cmp)
		}
		if ok {
			return true
		}
	}
	return false
}

// equal compares a value with an argument for == and in.
func (c *Cond) equal(a arg, inst *Instance, v string) bool {
	switch c.Subject.Kind {
	case SubjectAgentConnected:
		return strings.EqualFold(a.raw, v)
	case SubjectAgentVersion, SubjectRegisteredAt, SubjectRunningTasksCount:
		cmp, ok := c.compare(a, inst, v)
		return ok && cmp == 0
	}
	if a.star {
		return glob(a.raw, v)
	}
	return a.raw == v
}

// compare compares value v with argument a: -1, 0 or 1 as v is before,
// at or after a. ok is false when v cannot be compared.
func (c *Cond) compare(a arg, inst *Instance, v string) (cmp int, ok bool) {
	switch c.Subject.Kind {
	case SubjectAgentVersion:
		ver, ok := parseVersion(v, false)
		if !ok {
			return 0, false
		}
		return compareVersions(ver, a.version), true
	case SubjectRegisteredAt:
		t := inst.RegisteredAt.UTC()
		if a.day {
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		} else {
			t = t.Truncate(time.Second)
		}
		return t.Compare(a.at), true
	case SubjectRunningTasksCount:
		return cmpInt(int64(inst.RunningTasksCount), a.count), true
	case SubjectAttribute:
		if a.isNum {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				switch {
				case f < a.num:
					return -1, true
				case f > a.num:
					return 1, true
				}
				return 0, true
			}
		}
		return strings.Compare(v, a.raw), true
	}
	return 0, false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ordered reports whether cmp satisfies the ordering operator op.
func ordered(op Op, cmp int) bool {
	switch op {
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	}
	return false
}

// glob matches v against pattern, where each * stands for any run of
// characters (none included) and every other character for itself.
func glob(pattern, v string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == v
	}
	if !strings.HasPrefix(v, parts[0]) {
		return false
	}
	v = v[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(v, p)
		if i < 0 {
			return false
		}
		v = v[i+len(p):]
	}
	return strings.HasSuffix(v, last)
}
