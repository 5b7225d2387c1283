package logfilter

import (
	"strings"
	"testing"
)

// matchCase is one pattern, one message and whether it matches.
type matchCase struct {
	name    string
	pattern string
	message string
	want    bool
}

// Events used by AWS's documentation of the syntax.
const (
	// "Filter pattern syntax" (2022 and later), terms examples.
	ev400 = "[ERROR 400] BAD REQUEST"
	ev401 = "[ERROR 401] UNAUTHORIZED REQUEST"
	ev419 = "[ERROR 419] MISSING ARGUMENTS"
	ev420 = "[ERROR 420] INVALID ARGUMENTS"
	ev500 = "[ERROR 500] INTERNAL SERVER ERROR"

	// "Filter and Pattern Syntax" (2020), terms and OR examples.
	evFatal   = "[ERROR] A fatal exception has occurred"
	evExiting = "Exiting with ERRORCODE: -1"
	evCaught  = "[ERROR] Caught IllegalArgumentException"
	evUnhand  = "[ERROR] Unhandled Exception"
	evWarnF   = "[WARN] Failed to process the request"
	evUnable  = "[ERROR] Unable to continue: Failed to process the request"
	evEW      = "ERROR WARN message"
	evE       = "ERROR message"
	evW       = "WARN message"

	// The JSON example event (written on one line, as the docs ask).
	evJSON = `{"eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111", "arrayKey": ["value", "another value"], ` +
		`"objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "SomeObject": null, "ThisFlag": true}`
	// The compound-conditions example event.
	evUsers = `{"user": {"id": 1, "email": "John.Stiles@example.com"}, "users": [{"id": 2, "email": "John.Doe@example.com"}, ` +
		`{"id": 3, "email": "Jane.Doe@example.com"}], "actions": ["GET", "PUT", "DELETE"], "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]}`
	evUsersArray = `{"users": [1, 2, 3]}`
	evNumbers    = `{"latency": 1500, "numbers": [0.001], "processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}], "errorCode": 400, ` +
		`"bandwidth": 80, "refreshRate": 60, "responseTime": 5, "number": [0.001]}`
	evLatency = `{"latency": 50, "requestType": "GET"}`

	// Apache access log lines of the space-delimited examples.
	evApache200a = `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534`
	evApache500  = `127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324`
	evApache200b = `127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355`
	evApache404  = `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`
	evProd404    = `127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`
)

// awsExamples are the examples of AWS's documentation of the filter
// pattern syntax (the CloudWatch Logs User Guide's "Filter and Pattern
// Syntax" as of 2020 and 2022, the current regular-expression page, the
// FilterLogEvents examples of the Lightsail API reference, and the term
// groups the CDK renders), each with an event the documentation names and
// the documented outcome. Where the documentation gives a pattern without
// saying which events it matches, the outcome is Berth's and the name
// says so.
var awsExamples = []matchCase{
	// Terms.
	{"single term", "ERROR", ev400, true},
	{"single term 401", "ERROR", ev401, true},
	{"single term 419", "ERROR", ev419, true},
	{"single term 420", "ERROR", ev420, true},
	{"single term inside a word", "ERROR", evExiting, true},
	{"single term fatal", "ERROR", evFatal, true},
	{"multiple terms 419", "ERROR ARGUMENTS", ev419, true},
	{"multiple terms 420", "ERROR ARGUMENTS", ev420, true},
	{"multiple terms not 400", "ERROR ARGUMENTS", ev400, false},
	{"multiple terms not 401", "ERROR ARGUMENTS", ev401, false},
	{"two terms caught", "ERROR Exception", evCaught, true},
	{"two terms unhandled", "ERROR Exception", evUnhand, true},
	{"five terms warn", "Failed to process the request", evWarnF, true},
	{"five terms unable", "Failed to process the request", evUnable, true},
	{"any term 400", "?ERROR ?ARGUMENTS", ev400, true},
	{"any term 401", "?ERROR ?ARGUMENTS", ev401, true},
	{"any term 419", "?ERROR ?ARGUMENTS", ev419, true},
	{"any term 420", "?ERROR ?ARGUMENTS", ev420, true},
	{"exact phrase", `"INTERNAL SERVER ERROR"`, ev500, true},
	{"exact phrase not elsewhere", `"INTERNAL SERVER ERROR"`, ev400, false},
	{"include exclude 400", "ERROR -ARGUMENTS", ev400, true},
	{"include exclude 401", "ERROR -ARGUMENTS", ev401, true},
	{"include exclude not 419", "ERROR -ARGUMENTS", ev419, false},
	{"include exclude not 420", "ERROR -ARGUMENTS", ev420, false},
	{"quoted exclusion with a space after the minus", `"ERROR" - "Exiting"`, evExiting, false},
	{"quoted exclusion keeps others", `"ERROR" - "Exiting"`, evFatal, true},
	{"match everything with a quoted space", `" "`, "ERROR", true},
	{"match everything with a quoted space, empty message", `" "`, "", true},
	{"OR: ERROR matches 1", "ERROR", evEW, true},
	{"OR: ERROR matches 2", "ERROR", evE, true},
	{"OR: ERROR not 3", "ERROR", evW, false},
	{"OR: ?ERROR ?WARN matches 1", "?ERROR ?WARN", evEW, true},
	{"OR: ?ERROR ?WARN matches 2", "?ERROR ?WARN", evE, true},
	{"OR: ?ERROR ?WARN matches 3", "?ERROR ?WARN", evW, true},
	{"OR: ERROR WARN matches 1", "ERROR WARN", evEW, true},
	{"OR: ERROR WARN not 2", "ERROR WARN", evE, false},
	{"OR: ERROR WARN not 3", "ERROR WARN", evW, false},
	{"OR: ERROR -WARN not 1", "ERROR -WARN", evEW, false},
	{"OR: ERROR -WARN matches 2", "ERROR -WARN", evE, true},
	{"OR: ERROR -WARN not 3", "ERROR -WARN", evW, false},
	{"Lightsail: empty pattern", "", "anything", true},
	{"Lightsail: -ERROR excludes", "-ERROR", ev400, false},
	{"Lightsail: -ERROR keeps others", "-ERROR", "all good", true},
	{"Lightsail: ?ERROR ?Exception", "?ERROR ?Exception", "Exception in thread main", true},
	{"CDK term groups: first group", `?"ERROR" "MainThread" ?"WARN" "Deadlock"`, "ERROR in MainThread", true},
	{"CDK term groups: second group", `?"ERROR" "MainThread" ?"WARN" "Deadlock"`, "WARN Deadlock detected", true},
	{"CDK term groups: half of each", `?"ERROR" "MainThread" ?"WARN" "Deadlock"`, "ERROR Deadlock", false},
	{"CDK quoted terms", `"ERROR" "MainThread"`, "ERROR MainThread", true},

	// Regular expressions.
	{"regex AUTHORIZED in UNAUTHORIZED", "%AUTHORIZED%", ev401, true},
	{"regex AUTHORIZED", "%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST", true},
	{"regex IP address", `%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%`, "connect from 10.0.12.7 refused", true},
	{"regex IP address absent", `%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%`, "connect from localhost refused", false},
	{"regex alternation error", "%[Ee]rror|[Ff]ail%", "an error occurred", true},
	{"regex alternation fail", "%[Ee]rror|[Ff]ail%", "Failure", true},
	{"regex alternation neither", "%[Ee]rror|[Ff]ail%", "ERROR", false},
	{"regex ^ anchors at the start", "%^[hc]at%", "hat trick", true},
	{"regex ^ not elsewhere", "%^[hc]at%", "the cat", false},
	{"regex $ anchors at the end", "%[hc]at$%", "the cat", true},
	{"regex $ not elsewhere", "%[hc]at$%", "cat flap", false},
	{"regex ? color", "%colou?r%", "color", true},
	{"regex ? colour", "%colou?r%", "colour", true},
	{"regex class", "%[abc]%", "xbx", true},
	{"regex range", "%[a-z]%", "ABC", false},
	{"regex ranges and letters", "%[abcx-z]%", "Y y", true},
	{"regex repetition", "%a{3,5}%", "baaab", true},
	{"regex repetition too few", "%a{3,5}%", "baab", false},
	{"regex escape", `%10\.10\.0\.1%`, "from 10.10.0.1", true},
	{"regex escaped dot is not any character", `%10\.10\.0\.1%`, "from 10x10x0x1", false},
	{"regex star", "%ab*c%", "ac", true},
	{"regex plus", "%ab+c%", "ac", false},

	// JSON.
	{"JSON OR: bar matches 1", "{$.foo = bar}", `{"foo": "bar"}`, true},
	{"JSON OR: bar not 2", "{$.foo = bar}", `{"foo": "baz"}`, false},
	{"JSON OR: baz matches 2", "{$.foo = baz }", `{"foo": "baz"}`, true},
	{"JSON OR: either matches 1", "{$.foo = bar || $.foo = baz }", `{"foo": "bar"}`, true},
	{"JSON OR: either matches 2", "{$.foo = bar || $.foo = baz }", `{"foo": "baz"}`, true},
	{"JSON string", `{ $.eventType = "UpdateTrail" }`, evJSON, true},
	{"JSON wildcard not in subnet", "{ $.sourceIPAddress != 123.123.* }", evJSON, true},
	{"JSON array element", `{ $.arrayKey[0] = "value" }`, evJSON, true},
	{"JSON object in array", "{ $.objectList[1].id = 2 }", evJSON, true},
	{"JSON IS NULL", "{ $.SomeObject IS NULL }", evJSON, true},
	{"JSON NOT EXISTS", "{ $.SomeOtherObject NOT EXISTS }", evJSON, true},
	{"JSON IS TRUE", "{ $.ThisFlag IS TRUE }", evJSON, true},
	{"JSON IS FALSE on true", "{ $.ThisFlag IS FALSE }", evJSON, false},
	{"JSON compound AND", `{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }`, evUsers, true},
	{"JSON compound OR no match", `{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, evUsers, false},
	{"JSON precedence && before ||", `{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, evUsers, true},
	{"JSON parentheses first", `{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, evUsers, false},
	{"JSON precedence, quoted (2022)", `{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }`, evUsers, true},
	{"JSON parentheses, quoted (2022)", `{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }`, evUsers, false},
	{"JSON selector on an array: =", "{$.users = 1}", evUsersArray, false},
	{"JSON selector on an array: !=", "{$.users != 1}", evUsersArray, false},
	{"JSON numeric >=", "{ $.latency >= 500 }", evNumbers, true},
	{"JSON numeric < 10e3", "{ $.numbers[0] < 10e3 }", evNumbers, true},
	{"JSON numeric < 10e-3", "{ $.numbers[0] < 10e-3 }", evNumbers, true},
	{"JSON numeric <= decimal", "{ $.processes[4].averageRuntime <= 55.5 }", evNumbers, true},
	{"JSON numeric =", "{ $.errorCode = 400 }", evNumbers, true},
	{"JSON numeric !=", "{ $.errorCode != 500 }", evNumbers, true},
	{"JSON numeric > +1000", "{ $.latency > +1000 }", evNumbers, true},
	{"JSON numeric >", "{ $.bandwidth > 75 }", evNumbers, true},
	{"JSON numeric <", "{ $.latency < 50 }", evNumbers, false},
	{"JSON numeric >= equal", "{ $.refreshRate >= 60 }", evNumbers, true},
	{"JSON numeric <= equal", "{ $.responseTime <= 5 }", evNumbers, true},
	{"JSON numeric = no space before }", "{ $.errorCode = 400}", evNumbers, true},
	{"JSON numeric = 1e-3", "{ $.number[0] = 1e-3 }", evNumbers, true},
	{"JSON numeric != 1e+3", "{ $.number[0] != 1e+3 }", evNumbers, true},
	{"JSON dimension example", `{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }`, evJSON, true},
	{"JSON any value", "{ $.latency = * }", evLatency, true},
	{"JSON any value, missing", "{ $.size = * }", evLatency, false},

	// Space-delimited.
	{"fields all named 200", "[ip, user, username, timestamp, request, status_code, bytes]", evApache200a, true},
	{"fields all named 500", "[ip, user, username, timestamp, request, status_code, bytes]", evApache500, true},
	{"ellipsis first", "[..., status_code, bytes]", evApache200a, true},
	{"ellipsis middle", "[ip, user, ..., status_code, bytes]", evApache500, true},
	{"ellipsis last", "[ip, user, ...]", evApache200b, true},
	{"bytes > 1000 (1534)", "[ip, user, username, timestamp, request, status_code, bytes > 1000]", evApache200a, true},
	{"bytes > 1000 (5324)", "[ip, user, username, timestamp, request, status_code, bytes > 1000]", evApache500, true},
	{"status_code = 200 on 200", "[ip, user, username, timestamp, request, status_code = 200, bytes]", evApache200b, true},
	{"status_code = 200 on 500", "[ip, user, username, timestamp, request, status_code = 200, bytes]", evApache500, false},
	{"status_code = 4* on 500", "[ip, user, username, timestamp, request, status_code = 4*, bytes]", evApache500, false},
	{"status_code = 4* on 404", "[ip, user, username, timestamp, request, status_code = 4*, bytes]", evApache404, true},
	{"request = *html* on gif", "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", evApache200a, false},
	{"request = *html* on html 404", "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", evApache404, true},
	{"&& in one position, 404", "[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]", evApache404, true},
	{"&& in one position, 403", "[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
		strings.Replace(evApache404, " 404 ", " 403 ", 1), false},
	// Documented without an outcome; six positions never match seven fields.
	{"six positions, seven fields (Berth: no match)", "[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]", evApache404, false},
	{"extracted fields example", "[..., request=*.html*, status_code=4*,]", evApache404, true},
	{"Prod 404 seven fields", "[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]", evProd404, true},
	{"Prod 404 ellipsis", "[..., request =*.html*, status_code = 4*, bytes]", evProd404, true},
	{"Prod 404 or 410", "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]", evProd404, true},
	{"Prod dimension example", "[ip, server, username, timestamp, request, status_code, bytes > 1000]", evProd404, true},
	{"w1=ERROR matches 2", "[w1=ERROR, w2]", evE, true},
	{"w1=ERROR not 1 (three fields)", "[w1=ERROR, w2]", evEW, false},
	{"w1=ERROR not 3", "[w1=ERROR, w2]", evW, false},
	{"w1 ERROR or WARN, 2", "[w1=ERROR || w1=WARN, w2]", evE, true},
	{"w1 ERROR or WARN, 3", "[w1=ERROR || w1=WARN, w2]", evW, true},
	{"w1 ERROR or WARN, not 1", "[w1=ERROR || w1=WARN, w2]", evEW, false},
	{"w1 ERROR or W1 WARNING", "[w1=ERROR || W1=WARNING, w2]", "WARNING disk", true},
	{"w1 neither ERROR nor WARNING, excluded", "[w1!=ERROR && w1!=WARNING, w2]", "WARNING disk", false},
	{"w1 neither ERROR nor WARNING, kept", "[w1!=ERROR && w1!=WARNING, w2]", "INFO disk", true},
}

// edgeCases are Berth's own cases, for what AWS's examples leave open.
var edgeCases = []matchCase{
	{"empty pattern, empty message", "", "", true},
	{"only spaces", "   \t ", "x", true},
	{"terms are case-sensitive", "ERROR", "error: disk full", false},
	{"term anywhere in a word", "rror", "ERROR error", true},
	{"term with digits and underscore", "err_42", "code err_42 seen", true},
	{"unicode letters need no quotes", "Fehler", "Ein Fehler", true},
	{"phrase with punctuation", `"status: 500"`, "request failed, status: 500", true},
	{"phrase spacing must be exact", `"status: 500"`, "status:  500", false},
	{"escaped quote in phrase", `"say \"hi\""`, `they say "hi" twice`, true},
	{"escaped backslash in phrase", `"C:\\temp"`, `dir C:\temp`, true},
	{"other backslashes kept", `"a\nb"`, `a\nb`, true},
	{"excluded blank phrase excludes everything", `ERROR -" "`, "ERROR x", false},
	{"only exclusions", "-DEBUG -TRACE", "INFO started", true},
	{"only exclusions, excluded", "-DEBUG -TRACE", "TRACE enter", false},
	{"terms before the first ? are a group", "alpha ?beta", "alpha", true},
	{"terms before the first ? are a group, other", "alpha ?beta", "beta", true},
	{"group with exclusion", "?ERROR -retry ?FATAL", "ERROR will retry", false},
	{"group with exclusion, other group", "?ERROR -retry ?FATAL", "FATAL ERROR will retry", true},
	{"regex with a word", `ERROR %code=\d+%`, "ERROR code=42", true},
	{"regex with a word, no digits", `ERROR %code=\d+%`, "ERROR code=x", false},
	{"excluded regex", `ERROR -%retry\d%`, "ERROR retry1", false},
	{"regex in quotes is a phrase", `"%AUTH%"`, "100%AUTH% ok", true},
	{"regex escaped paren", `%f\(x\)%`, "call f(x)", true},

	{"JSON: not JSON", "{ $.a = 1 }", "a = 1", false},
	{"JSON: truncated JSON", "{ $.a = 1 }", `{"a": 1`, false},
	{"JSON: array at the top", "{ $.a NOT EXISTS }", `[{"a": 1}]`, false},
	{"JSON: NOT EXISTS needs JSON", "{ $.a NOT EXISTS }", "plain text", false},
	{"JSON: NOT EXISTS nested", "{ $.a.b NOT EXISTS }", `{"a": {"c": 1}}`, true},
	{"JSON: NOT EXISTS when the parent is a string", "{ $.a.b NOT EXISTS }", `{"a": "x"}`, true},
	{"JSON: index past the end does not exist", "{ $.a[3] NOT EXISTS }", `{"a": [1, 2]}`, true},
	{"JSON: index into an object", "{ $.a[0] = 1 }", `{"a": {"0": 1}}`, false},
	{"JSON: nested arrays", "{ $.c[2][1] = 8 }", `{"c": [[0, 1], [4, 5], [7, 8]]}`, true},
	{"JSON: white space everywhere", "{$.a.b=x}", "\n{ \"a\" :\t{ \"b\" : \"x\" } }\n", true},
	{"JSON: string escapes decoded", `{ $.msg = "a\"b" }`, `{"msg": "a\"b"}`, true},
	{"JSON: unicode escape decoded", `{ $.msg = "é" }`, `{"msg": "\u00e9"}`, true},
	{"JSON: escaped key", `{ $.ab = 1 }`, `{"a\u0062": 1}`, true},
	{"JSON: first of duplicate keys", `{ $.a = 1 }`, `{"a": 1, "a": 2}`, true},
	{"JSON: skip nested values with brackets in strings", `{ $.z = 1 }`, `{"a": {"s": "}]\"{["}, "b": [1, [2, {"c": "]"}]], "z": 1}`, true},
	{"JSON: numbers compare as numbers", "{ $.n = 1.0 }", `{"n": 1}`, true},
	{"JSON: exponent in the event", "{ $.n > 1000 }", `{"n": 1.5e3}`, true},
	{"JSON: huge numbers are ordered", "{ $.n > 1e300 }", `{"n": 1e999}`, true},
	{"JSON: tiny numbers are ordered", "{ $.n < 1e-999 }", `{"n": -1}`, true},
	{"JSON: number equality against a string value", "{ $.code = 400 }", `{"code": "400"}`, true},
	{"JSON: ordering needs a JSON number", "{ $.code > 100 }", `{"code": "400"}`, false},
	{"JSON: wildcard on a number", "{ $.code = 4* }", `{"code": 404}`, true},
	{"JSON: * in the middle is literal", "{ $.e = Ev*ent }", `{"e": "EvXent"}`, false},
	{"JSON: * in the middle matches itself", "{ $.e = Ev*ent }", `{"e": "Ev*ent"}`, true},
	{"JSON: leading *", "{ $.e = *Event }", `{"e": "PutEvent"}`, true},
	{"JSON: trailing *", "{ $.e = Event* }", `{"e": "EventName"}`, true},
	{"JSON: quoted * is a wildcard too", `{ $.e = "Put*" }`, `{"e": "PutEvent"}`, true},
	{"JSON: * matches a boolean", "{ $.f = * }", `{"f": false}`, true},
	{"JSON: * does not match null", "{ $.f = * }", `{"f": null}`, false},
	{"JSON: != * is never true", "{ $.f != * }", `{"f": "x"}`, false},
	{"JSON: != on a missing field", "{ $.f != x }", `{"g": "x"}`, false},
	{"JSON: boolean compares as text", "{ $.f = true }", `{"f": true}`, true},
	{"JSON: IS FALSE", "{ $.f IS FALSE }", `{"f": false}`, true},
	{"JSON: IS NULL on a missing field", "{ $.f IS NULL }", `{}`, false},
	{"JSON: keywords in any case", "{ $.f is null || $.g not exists }", `{"f": 1}`, true},
	{"JSON: comparison on an object", "{ $.o = * }", `{"o": {}}`, false},
	{"JSON: regex on a string", "{ $.msg = %time.?out% }", `{"msg": "request timeout"}`, true},
	{"JSON: regex !=", "{ $.msg != %^ok% }", `{"msg": "failed"}`, true},
	{"JSON: regex on a number", "{ $.code = %^5[0-9]{2}$% }", `{"code": 503}`, true},
	{"JSON: case-sensitive values", "{ $.level = error }", `{"level": "ERROR"}`, false},
	{"JSON: deeply nested parentheses", "{ ((($.a = 1))) }", `{"a": 1}`, true},
	{"JSON: hyphen in a property name", `{ $.detail-type = "EC2 Instance State-change Notification" }`,
		`{"detail-type": "EC2 Instance State-change Notification"}`, true},

	{"fields: too few", "[a, b, c]", "x y", false},
	{"fields: too many", "[a, b]", "x y z", false},
	{"fields: runs of spaces and tabs", "[a, b = y, c]", "x   y\tz\n", true},
	{"fields: quoted field keeps spaces", `[a, b = "GET /x HTTP/1.1", c]`, `1 "GET /x HTTP/1.1" 3`, true},
	{"fields: bracketed field keeps spaces", `[a, b = "1 2", c]`, `x [1 2] z`, true},
	{"fields: unclosed quote runs to the end", `[a, b = "y z"]`, `x "y z`, true},
	{"fields: empty quoted field", `[a, b = "", c]`, `x "" z`, true},
	{"fields: empty position is any one field", "[a = x, , c = z]", "x y z", true},
	{"fields: empty position needs a field", "[a = x, , c = z]", "x z", false},
	{"fields: ellipsis takes no fields", "[a, ..., b]", "x y", true},
	{"fields: ellipsis backtracks", "[..., a = x, b]", "x y x y", true},
	{"fields: two ellipses", "[..., a = 5*, ..., b = end]", "1 2 500 3 end", true},
	{"fields: two ellipses, no match", "[..., a = 5*, ..., b = end]", "1 2 400 3 end", false},
	{"fields: only an ellipsis", "[...]", "", true},
	{"fields: numeric equality", "[a, b = 200]", "x 200.0", true},
	{"fields: numeric comparison on text", "[a, b > 100]", "x abc", false},
	{"fields: != on text", "[a, b != 200]", "x abc", true},
	{"fields: negative number", "[a, b < 0]", "x -5", true},
	{"fields: regex", "[a, b = %^4[0-9]{2}$%]", "x 404", true},
	{"fields: regex no match", "[a, b = %^4[0-9]{2}$%]", "x 5404", false},
	{"fields: parentheses in a condition", "[a, b = 1 && (b != 2 || b = 3)]", "x 1", true},
	{"fields: bare names in a condition", "[a && a, b]", "x y", true},
	{"fields: leading spaces", "[a = x, b]", "   x y", true},
	{"fields: empty message", "[a]", "", false},
	{"fields: value with quote marks", `[a = "say \"hi\""]`, `"say \"hi\""`, false},
	{"fields: value with bang (AWS's =! example)", "[w1=!ERROR, w2]", "!ERROR x", true},
}

func TestMatchAWSExamples(t *testing.T) { runMatchCases(t, awsExamples) }

func TestMatchEdgeCases(t *testing.T) { runMatchCases(t, edgeCases) }

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.pattern)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.pattern, err)
			}
			if got := p.Match(c.message); got != c.want {
				t.Errorf("Parse(%q).Match(%q) = %v, want %v", c.pattern, c.message, got, c.want)
			}
			if p.String() != c.pattern {
				t.Errorf("String() = %q, want %q", p.String(), c.pattern)
			}
		})
	}
}

// TestMatchDoesNotAllocate checks that matching the common shapes
// allocates nothing, since FilterLogEvents matches every scanned event.
func TestMatchDoesNotAllocate(t *testing.T) {
	for _, c := range []matchCase{
		{"terms", `ERROR -ARGUMENTS ?"INTERNAL SERVER"`, ev500, true},
		{"regex", `%\d{3}\]%`, ev500, true},
		{"JSON", `{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") || $.actions[2] = DEL* }`, evUsers, true},
		{"JSON numbers", "{ $.latency >= 500 && $.processes[4].averageRuntime <= 55.5 }", evNumbers, true},
		{"fields", "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes > 1000]", evApache404, true},
		{"fields ellipsis", "[..., status_code = 4* && status_code != 403, bytes]", evApache404, true},
	} {
		p := MustParse(c.pattern)
		if got := p.Match(c.message); got != c.want {
			t.Fatalf("%s: Match = %v, want %v", c.name, got, c.want)
		}
		if n := testing.AllocsPerRun(100, func() { p.Match(c.message) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per call", c.name, n)
		}
	}
}
