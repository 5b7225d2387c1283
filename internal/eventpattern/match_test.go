package eventpattern

import (
	"errors"
	"strings"
	"testing"
)

// An EC2 state-change event like the user guide's, with a few detail
// fields the content-filtering examples use.
const ec2Event = `{
  "version": "0",
  "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "012345679012",
  "time": "2017-10-02T16:24:49Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
  "detail": {
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.33",
    "instance-id": "i-000000aaaaaa00000",
    "state": "running",
    "FileName": "photos/Cat.PNG",
    "FilePath": "/usr/lib/libc.so",
    "service": "EventBridge",
    "responseElements": null,
    "enabled": true,
    "eventVersion": ""
  }
}`

func TestDocumentedPatterns(t *testing.T) {
	cases := []struct {
		name    string
		pattern string
		want    bool
	}{
		// Matching on field values.
		{"source, detail-type and one of two states", `{"source":["aws.ec2"],"detail-type":["EC2 Instance State-change Notification"],"detail":{"state":["initializing","running"]}}`, true},
		{"a state the event does not have", `{"detail":{"state":["terminated"]}}`, false},
		{"event array intersects the pattern's values", `{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000","arn:other"]}`, true},
		{"a field the event lacks", `{"detail":{"missing":["x"]}}`, false},
		{"matching is case sensitive", `{"source":["AWS.EC2"]}`, false},
		{"null matches a null field", `{"detail":{"responseElements":[null]}}`, true},
		{"null does not match a missing field", `{"detail":{"nothing":[null]}}`, false},
		{"empty string matches an empty field", `{"detail":{"eventVersion":[""]}}`, true},
		{"true matches a boolean", `{"detail":{"enabled":[true]}}`, true},
		{"the string true is not the boolean", `{"detail":{"enabled":["true"]}}`, false},
		{"a number matches by value", `{"detail":{"x-limit":[3.018e2]}}`, true},
		{"an integer matches 5.0", `{"detail":{"c-count":[5.0]}}`, true},
		{"the string 5 is not the number", `{"detail":{"c-count":["5"]}}`, false},
		{"exactly", `{"source":[{"exactly":"aws.ec2"}]}`, true},
		// Prefix and suffix.
		{"prefix on time", `{"time":[{"prefix":"2017-10-02"}]}`, true},
		{"prefix of another day", `{"time":[{"prefix":"2017-10-03"}]}`, false},
		{"prefix only on strings", `{"detail":{"c-count":[{"prefix":"5"}]}}`, false},
		{"prefix ignoring case", `{"detail":{"service":[{"prefix":{"equals-ignore-case":"eventb"}}]}}`, true},
		{"suffix", `{"detail":{"FileName":[{"suffix":".PNG"}]}}`, true},
		{"suffix is case sensitive", `{"detail":{"FileName":[{"suffix":".png"}]}}`, false},
		{"suffix ignoring case", `{"detail":{"FileName":[{"suffix":{"equals-ignore-case":".png"}}]}}`, true},
		{"equals-ignore-case", `{"detail":{"service":[{"equals-ignore-case":"EVENTBRIDGE"}]}}`, true},
		{"equals-ignore-case is whole value", `{"detail":{"service":[{"equals-ignore-case":"EVENT"}]}}`, false},
		// Wildcard.
		{"wildcard in the middle", `{"detail":{"FilePath":[{"wildcard":"/usr/*/libc.so"}]}}`, true},
		{"wildcard several stars", `{"detail":{"FilePath":[{"wildcard":"*/lib/*.so"}]}}`, true},
		{"wildcard no match", `{"detail":{"FilePath":[{"wildcard":"*/bin/*"}]}}`, false},
		{"wildcard star alone", `{"detail":{"FilePath":[{"wildcard":"*"}]}}`, true},
		{"wildcard escaped star is literal", `{"detail":{"FilePath":[{"wildcard":"/usr/lib/\\*"}]}}`, false},
		// Anything-but.
		{"anything-but a string", `{"detail":{"state":[{"anything-but":"initializing"}]}}`, true},
		{"anything-but the value itself", `{"detail":{"state":[{"anything-but":"running"}]}}`, false},
		{"anything-but a number", `{"detail":{"c-count":[{"anything-but":123}]}}`, true},
		{"anything-but the number itself", `{"detail":{"c-count":[{"anything-but":5}]}}`, false},
		{"anything-but a string list", `{"detail":{"state":[{"anything-but":["stopped","overloaded"]}]}}`, true},
		{"anything-but a list holding the value", `{"detail":{"state":[{"anything-but":["stopped","running"]}]}}`, false},
		{"anything-but a number list", `{"detail":{"d-count":[{"anything-but":[100,200,300]}]}}`, true},
		{"anything-but a number list holding the value", `{"detail":{"d-count":[{"anything-but":[1,2,3]}]}}`, false},
		{"anything-but prefix", `{"detail":{"state":[{"anything-but":{"prefix":"init"}}]}}`, true},
		{"anything-but prefix of the value", `{"detail":{"state":[{"anything-but":{"prefix":"run"}}]}}`, false},
		{"anything-but prefix list", `{"detail":{"state":[{"anything-but":{"prefix":["init","ru"]}}]}}`, false},
		{"anything-but suffix", `{"detail":{"instance-id":[{"anything-but":{"suffix":"1234"}}]}}`, true},
		{"anything-but suffix of the value", `{"detail":{"instance-id":[{"anything-but":{"suffix":["1234","000"]}}]}}`, false},
		{"anything-but ignoring case", `{"detail":{"state":[{"anything-but":{"equals-ignore-case":"RUNNING"}}]}}`, false},
		{"anything-but ignoring case, other values", `{"detail":{"state":[{"anything-but":{"equals-ignore-case":["Stopped","OverLoaded"]}}]}}`, true},
		{"anything-but wildcard", `{"detail":{"FilePath":[{"anything-but":{"wildcard":"*/lib/*"}}]}}`, false},
		{"anything-but wildcard list", `{"detail":{"FilePath":[{"anything-but":{"wildcard":["*/bin/*.jar","*/bin/*.class"]}}]}}`, true},
		{"anything-but needs the field", `{"detail":{"missing":[{"anything-but":"x"}]}}`, false},
		{"anything-but a string matches a number", `{"detail":{"c-count":[{"anything-but":"5"}]}}`, true},
		// Numeric.
		{"numeric range and bounds", `{"detail":{"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"numeric":["=",3.018e2]}]}}`, true},
		{"numeric open top excludes the bound", `{"detail":{"c-count":[{"numeric":[">",0,"<",5]}]}}`, false},
		{"numeric >= includes the bound", `{"detail":{"c-count":[{"numeric":[">=",5]}]}}`, true},
		{"numeric > excludes the bound", `{"detail":{"c-count":[{"numeric":[">",5]}]}}`, false},
		{"numeric only on numbers", `{"detail":{"state":[{"numeric":[">",0]}]}}`, false},
		// IP addresses.
		{"cidr", `{"detail":{"source-ip":[{"cidr":"10.0.0.0/24"}]}}`, true},
		{"cidr elsewhere", `{"detail":{"source-ip":[{"cidr":"10.0.1.0/24"}]}}`, false},
		{"an exact address matches however it is written", `{"detail":{"source-ip":["10.0.0.33","2001:db8::1"]}}`, true},
		{"cidr on a non-address", `{"detail":{"state":[{"cidr":"10.0.0.0/8"}]}}`, false},
		// Exists.
		{"exists true", `{"detail":{"c-count":[{"exists":true}]}}`, true},
		{"exists false on a present field", `{"detail":{"c-count":[{"exists":false}]}}`, false},
		{"exists false on a missing field", `{"detail":{"e-count":[{"exists":false}]}}`, true},
		{"exists false when the parent is missing", `{"nothing":{"e-count":[{"exists":false}]}}`, true},
		{"exists true on a missing field", `{"detail":{"e-count":[{"exists":true}]}}`, false},
		{"exists true on a null field", `{"detail":{"responseElements":[{"exists":true}]}}`, true},
		// Complex and $or.
		{"the complex example", `{"time":[{"prefix":"2017-10-02"}],"detail":{"state":[{"anything-but":"initializing"}],"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"anything-but":[100,200,300]}],"source-ip":[{"cidr":"10.0.0.0/8"}]}}`, true},
		{"the complex example failing one field", `{"time":[{"prefix":"2017-10-02"}],"detail":{"state":[{"anything-but":"running"}],"c-count":[{"numeric":[">",0,"<=",5]}]}}`, false},
		{"$or, second branch", `{"source":["aws.ec2"],"$or":[{"detail":{"state":["stopped"]}},{"detail":{"c-count":[{"numeric":[">",4]}]}}]}`, true},
		{"$or, no branch", `{"$or":[{"detail":{"state":["stopped"]}},{"region":["eu-west-1"]}]}`, false},
		{"$or inside detail", `{"detail":{"$or":[{"c-count":[{"numeric":[">",0,"<=",5]}]},{"d-count":[{"numeric":["<",10]}]},{"x-limit":[{"numeric":["=",3.018e2]}]}]}}`, true},
		{"$or and AND", `{"source":["aws.ec2"],"$or":[{"region":["eu-west-1"]},{"detail":{"state":["running"],"c-count":[5]}}]}`, true},
		{"$or and AND failing", `{"source":["aws.ec2"],"$or":[{"region":["eu-west-1"]},{"detail":{"state":["running"],"c-count":[6]}}]}`, false},
		{"nested $or", `{"$or":[{"region":["eu-west-1"]},{"detail":{"state":["running"]},"$or":[{"detail":{"d-count":[3]}},{"account":["1"]}]}]}`, true},
		{"parallel $or", `{"$or":[{"region":["us-east-1"]},{"account":["1"]}],"detail":{"$or":[{"state":["x"]},{"c-count":[5]}]}}`, true},
		{"parallel $or, one fails", `{"$or":[{"region":["us-east-1"]},{"account":["1"]}],"detail":{"$or":[{"state":["x"]},{"c-count":[6]}]}}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile([]byte(tc.pattern))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := p.Match([]byte(ec2Event))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// The guide's exists example: exists false on detail.c-count matches an
// event without it, and one where c-count is an object (not a leaf).
func TestExistsOnlyOnLeaves(t *testing.T) {
	p := mustCompile(t, `{"detail":{"c-count":[{"exists":false}]}}`)
	for _, ev := range []string{
		`{"detail-type":"EC2 Instance State-change Notification","detail":{"state":["initializing","running"]}}`,
		`{"detail":{"state":["initializing","running"],"c-count":{"c1":100}}}`,
		`{"detail":{"c-count":[]}}`,
	} {
		if !match(t, p, ev) {
			t.Errorf("exists false should match %s", ev)
		}
	}
	p = mustCompile(t, `{"detail":{"c-count":[{"exists":true}]}}`)
	if match(t, p, `{"detail":{"c-count":{"c1":100}}}`) {
		t.Error("exists true matched an object")
	}
	if !match(t, p, `{"detail":{"c-count":[1]}}`) {
		t.Error("exists true did not match an array of values")
	}
}

// Arrays of objects: the fields one object pattern names must be matched
// by the same element (Event Ruler's rulesForJSONEvent).
func TestArraysOfObjects(t *testing.T) {
	ev := `{"employees":[{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"},[{"firstName":"Peter","lastName":"Jones"}]]}`
	cases := []struct {
		pattern string
		want    bool
	}{
		{`{"employees":{"firstName":["Anna"]}}`, true},
		{`{"employees":{"firstName":["Peter"]}}`, true}, // nested arrays are crushed
		{`{"employees":{"firstName":["Anna"],"lastName":["Smith"]}}`, true},
		{`{"employees":{"firstName":["Anna"],"lastName":["Jones"]}}`, false},
		{`{"employees":{"firstName":[{"prefix":"J"}],"lastName":["Doe"]}}`, true},
		{`{"employees":{"middleName":[{"exists":false}]}}`, true},
		{`{"employees":{"firstName":[{"exists":false}]}}`, false},
	}
	for _, c := range cases {
		if got := match(t, mustCompile(t, c.pattern), ev); got != c.want {
			t.Errorf("%s: %v, want %v", c.pattern, got, c.want)
		}
	}
}

func TestNumbers(t *testing.T) {
	cases := []struct {
		pattern, event string
		want           bool
	}{
		{`{"n":[300]}`, `{"n":3e2}`, true},
		{`{"n":[300]}`, `{"n":300.000}`, true},
		{`{"n":[0.1]}`, `{"n":0.10}`, true},
		{`{"n":[-0]}`, `{"n":0}`, true},
		{`{"n":[1]}`, `{"n":1.0000001}`, false},
		{`{"n":[1]}`, `{"n":"1"}`, false},
		// An account number too long for a double matches by its text.
		{`{"n":[123456789012345678901]}`, `{"n":123456789012345678901}`, true},
		{`{"n":[123456789012345678901]}`, `{"n":123456789012345678902}`, false},
		{`{"n":[{"numeric":["=",5]}]}`, `{"n":5.0}`, true},
		{`{"n":[{"numeric":[">=",-1e9,"<=",1e9]}]}`, `{"n":1e9}`, true},
		{`{"n":[{"numeric":[">",-1e9,"<",1e9]}]}`, `{"n":1e9}`, false},
		{`{"n":[{"numeric":[">",0.000001]}]}`, `{"n":0.0000011}`, true},
		{`{"n":[{"numeric":["<",999999999.999999]}]}`, `{"n":999999999.999998}`, true},
		{`{"n":[{"numeric":[">",0]}]}`, `{"n":[-1,-2,3]}`, true},
		{`{"n":[{"numeric":[">",0]}]}`, `{"n":1e400}`, false},
		{`{"n":[{"anything-but":[1,2]}]}`, `{"n":2.0}`, false},
		{`{"n":[{"anything-but":[1,2]}]}`, `{"n":"2"}`, true},
	}
	for _, c := range cases {
		if got := match(t, mustCompile(t, c.pattern), c.event); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.pattern, c.event, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ pattern, reason string }{
		{`[]`, "Filter is not an object"},
		{`"x"`, "Filter is not an object"},
		{`{}`, "Empty objects are not allowed"},
		{`{"a":{}}`, "Empty objects are not allowed"},
		{`{"a":"x"}`, `"a" must be an object or an array`},
		{`{"a":5}`, `"a" must be an object or an array`},
		{`{"a":[]}`, "Empty arrays are not allowed"},
		{`{"a":[["x"]]}`, "Match value must be String, number, true, false, or null"},
		{`{"a":[{}]}`, "Match expression name not found"},
		{`{"a":[{"regex":"x"}]}`, "Unrecognized match type regex"},
		{`{"a":[{"prefix":5}]}`, "prefix match pattern must be a string"},
		{`{"a":[{"prefix":"x","suffix":"y"}]}`, "Only one key allowed in match expression"},
		{`{"a":[{"prefix":{"wildcard":"x"}}]}`, "Unsupported prefix pattern: wildcard"},
		{`{"a":[{"prefix":{}}]}`, "Prefix expression name not found"},
		{`{"a":[{"suffix":{"equals-ignore-case":1}}]}`, "equals-ignore-case match pattern must be a string"},
		{`{"a":[{"suffix":null}]}`, "suffix match pattern must be a string"},
		{`{"a":[{"exactly":1}]}`, "exact match pattern must be a string"},
		{`{"a":[{"equals-ignore-case":["x"]}]}`, "equals-ignore-case match pattern must be a string"},
		{`{"a":[{"wildcard":"a**b"}]}`, "Consecutive wildcard characters at pos 2"},
		{`{"a":[{"wildcard":"a\\b"}]}`, "Invalid escape character at pos 2"},
		{`{"a":[{"wildcard":3}]}`, "wildcard match pattern must be a string"},
		{`{"a":[{"exists":"yes"}]}`, "exists match pattern must be either true or false."},
		{`{"a":[{"numeric":5}]}`, "Value of numeric must be an array."},
		{`{"a":[{"numeric":[]}]}`, "Invalid member in numeric match: ]"},
		{`{"a":[{"numeric":[5]}]}`, "Invalid member in numeric match: 5"},
		{`{"a":[{"numeric":[true]}]}`, "Invalid member in numeric match: true"},
		{`{"a":[{"numeric":[">",0,null]}]}`, "Bad value in numeric range: null"},
		{`{"a":[{"numeric":["!=",5]}]}`, "Unrecognized numeric range operator: !="},
		{`{"a":[{"numeric":["=","5"]}]}`, "Value of equals must be numeric"},
		{`{"a":[{"numeric":["=",5,6]}]}`, "Too many elements in numeric expression"},
		{`{"a":[{"numeric":[">","x"]}]}`, "Value of > must be numeric"},
		{`{"a":[{"numeric":["<",1,">",0]}]}`, "Too many elements in numeric expression"},
		{`{"a":[{"numeric":[">",0,5]}]}`, "Bad value in numeric range: 5"},
		{`{"a":[{"numeric":[">",0,">",5]}]}`, "Bad numeric range operator: >"},
		{`{"a":[{"numeric":[">",0,"<","5"]}]}`, "Value of < must be numeric"},
		{`{"a":[{"numeric":[">",0,"<",5,6]}]}`, "Too many terms in numeric range expression"},
		{`{"a":[{"numeric":[">",5,"<",5]}]}`, "Bottom must be less than top"},
		{`{"a":[{"numeric":[">",1e400]}]}`, "Cannot compare number : 1e400"},
		{`{"a":[{"numeric":[">",0],"x":1}]}`, "Too many elements in numeric expression"},
		{`{"a":[{"anything-but":null}]}`, "Value of anything-but must be an array or single string/number value."},
		{`{"a":[{"anything-but":[true]}]}`, "Inside anything but list, start|null|boolean is not supported."},
		{`{"a":[{"anything-but":["x",1]}]}`, "Inside anything but list, either all values are number or string, mixed type is not supported"},
		{`{"a":[{"anything-but":[]}]}`, "Inside anything but list, either all values are number or string, mixed type is not supported"},
		{`{"a":[{"anything-but":{"exists":true}}]}`, "Unsupported anything-but pattern: exists"},
		{`{"a":[{"anything-but":{}}]}`, "Anything-But expression name not found"},
		{`{"a":[{"anything-but":{"prefix":""}}]}`, "Null prefix/suffix not allowed"},
		{`{"a":[{"anything-but":{"suffix":[1]}}]}`, "prefix/suffix match pattern must be a string"},
		{`{"a":[{"anything-but":{"equals-ignore-case":[1]}}]}`, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."},
		{`{"a":[{"anything-but":{"wildcard":["a**"]}}]}`, "Consecutive wildcard characters at pos 2"},
		{`{"a":[{"anything-but":{"prefix":"x","suffix":"y"}}]}`, "Too many elements in numeric expression"},
		{`{"a":[{"cidr":"10.0.0.0"}]}`, "Malformed CIDR, one '/' required"},
		{`{"a":[{"cidr":"10.0.0.0/x"}]}`, "Malformed CIDR, mask bits must be an integer"},
		{`{"a":[{"cidr":"10.0.0.0/-1"}]}`, "Malformed CIDR, mask bits must not be negative"},
		{`{"a":[{"cidr":"10.0.0.0/32"}]}`, "IPv4 mask bits must be < 32"},
		{`{"a":[{"cidr":"::/128"}]}`, "IPv6 mask bits must be < 128"},
		{`{"a":[{"cidr":"10.0.0.256/8"}]}`, "Invalid IP address: 10.0.0.256"},
		{`{"a":[{"cidr":1}]}`, "prefix match pattern must be a string"},
		{`{"$or":{"a":["x"]}}`, "It must be an Array followed with $or."},
		{`{"$or":[{"a":["x"]}]}`, "There must have at least 2 Objects in $or relationship."},
		{`{"$or":[{"a":["x"]},"b"]}`, "Only JSON object is allowed in array of $or relationship."},
		{`{"$or":[{"a":["x"]},{"numeric":["b"]}]}`, "numeric is Ruler reserved fieldName which cannot be used inside $or."},
		{`{"$or":[{"a":["x"]},{"b":{"prefix":["b"]}}]}`, "prefix is Ruler reserved fieldName which cannot be used inside $or."},
		{`{"a":["x"]`, "expected ',' or '}' in an object"},
		{`{"a":["x"]}}`, "unexpected data after the JSON value"},
		{``, "unexpected end of input"},
	}
	for _, c := range cases {
		_, err := Compile([]byte(c.pattern))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err %v, want *Error", c.pattern, err)
			continue
		}
		if e.Reason != c.reason {
			t.Errorf("%s: reason %q, want %q", c.pattern, e.Reason, c.reason)
		}
		if !strings.HasPrefix(err.Error(), "Event pattern is not valid. Reason: "+c.reason) {
			t.Errorf("%s: message %q", c.pattern, err)
		}
	}
}

func TestErrorPosition(t *testing.T) {
	_, err := Compile([]byte("{\n  \"a\": [\n    {\"numeric\": [\">\", \"x\"]}\n  ]\n}"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if e.Line != 3 || e.Column != 26 {
		t.Errorf("position %d:%d, want 3:26", e.Line, e.Column)
	}
	want := "Event pattern is not valid. Reason: Value of > must be numeric\n at [Source: (String)\"{\n  \"a\": [\n    {\"numeric\": [\">\", \"x\"]}\n  ]\n}\"; line: 3, column: 26]"
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err, want)
	}
}

func TestIPv6Spellings(t *testing.T) {
	p := mustCompile(t, `{"ip":["2001:db8::1"]}`)
	if !match(t, p, `{"ip":"2001:0DB8:0:0:0:0:0:1"}`) || match(t, p, `{"ip":"2001:db8::2"}`) {
		t.Error("an IPv6 value should match its other spellings only")
	}
	s := NewSet()
	s.Put("p", p)
	if ids, _ := s.Match([]byte(`{"ip":"2001:0db8::0:1"}`)); len(ids) != 1 {
		t.Error("the Set missed an address spelt differently")
	}
}

// Positions as EventBridge reports them (from Jackson, after the token).
func TestErrorColumns(t *testing.T) {
	for _, c := range []struct {
		pattern string
		col     int
	}{
		{`{"source": ["aws.health"], "detail": {}}`, 40}, // AWS's answer for this pattern
		{`[1]`, 2},
		{`{"a":"x"}`, 9},
		{`{"a":[]}`, 8},
		{`{"a":[{"prefix":"x","suffix":"y"}]}`, 29},
		{`{"a":[{"numeric":[">",5,"<",1]}]}`, 31},
	} {
		_, err := Compile([]byte(c.pattern))
		var e *Error
		if !errors.As(err, &e) || e.Column != c.col {
			t.Errorf("%s: %v, want column %d", c.pattern, err, c.col)
		}
	}
}

func TestReservedNamesOutsideOrAreFields(t *testing.T) {
	p := mustCompile(t, `{"prefix":["x"],"numeric":[1]}`)
	if !match(t, p, `{"prefix":"x","numeric":1}`) {
		t.Error("reserved names outside $or should be plain fields")
	}
}

func TestRepeatedNameReplaces(t *testing.T) {
	p := mustCompile(t, `{"a":["x"],"a":["y"]}`)
	if match(t, p, `{"a":"x"}`) || !match(t, p, `{"a":"y"}`) {
		t.Error("the later of two equal names should win")
	}
}

func TestBadEvents(t *testing.T) {
	p := mustCompile(t, `{"a":["x"]}`)
	for _, ev := range []string{``, `[]`, `"a"`, `{"a":`, `{"a":"x"`, `{"a":"\x01"}`, `{"a":01}`, `{"a":"\u12"}`} {
		_, err := p.Match([]byte(ev))
		var e *EventError
		if !errors.As(err, &e) {
			t.Errorf("%q: err %v, want *EventError", ev, err)
		}
	}
}

func TestEscapesAndUnicode(t *testing.T) {
	p := mustCompile(t, `{"a":["caf\u00e9 \"q\""],"b":[{"equals-ignore-case":"ÉTÉ"}],"c":[{"prefix":{"equals-ignore-case":"straSSe"}}],"d":["\ud83d\ude00"]}`)
	if !match(t, p, `{"a":"café \"q\"","b":"été","c":"STRASSENBAHN","d":"😀"}`) {
		t.Error("escaped and non-ASCII values should match")
	}
}

func mustCompile(t *testing.T, s string) *Pattern {
	t.Helper()
	p, err := Compile([]byte(s))
	if err != nil {
		t.Fatalf("Compile(%s): %v", s, err)
	}
	return p
}

func match(t *testing.T, p *Pattern, ev string) bool {
	t.Helper()
	ok, err := p.Match([]byte(ev))
	if err != nil {
		t.Fatalf("Match(%s): %v", ev, err)
	}
	return ok
}
