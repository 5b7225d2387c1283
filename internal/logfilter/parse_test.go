package logfilter

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errs"
)

// parseErrors are malformed patterns, with the column and a part of the
// message Parse must report. Those marked (AWS) are patterns CloudWatch
// Logs is known to reject with "Invalid character(s) in term".
var parseErrors = []struct {
	name    string
	pattern string
	column  int
	msg     string
}{
	// Terms.
	{"colon in an unquoted term (AWS)", "?Status: timeout", 8, "Invalid character(s) in term ':'"},
	{"parenthesis in an unquoted term (AWS)", "PlayerSpawnedInWorld (reason: JoinMultiplayer", 22, "Invalid character(s) in term '('"},
	{"backtick (AWS)", "`ERROR`", 1, "Invalid character(s) in term '`'"},
	{"backslash in an unquoted term (AWS)", `level\":\"error`, 6, `Invalid character(s) in term '\'`},
	{"bracket after a quoted term (AWS)", `"retrievedReferences":[]`, 22, "Invalid character(s) in term ':'"},
	{"dot in an unquoted term", "a.b", 2, "must be enclosed in double quotes"},
	{"unterminated quote", `ERROR "disk full`, 7, "unterminated quoted string"},
	{"lone minus", "ERROR -", 7, `expected a term after '-'`},
	{"lone question mark", "? ERROR", 1, `expected a term after '?'`},
	{"quoted term glued to a word", `"a"b`, 4, "Invalid character(s) in term 'b'"},

	// Regular expressions.
	{"regex with ! (AWS)", "%something!%", 11, "Invalid character(s) in term '!'"},
	{"regex with parentheses", "%(a|b)c%", 2, "Invalid character(s) in term '('"},
	{"regex with a space", "%a b%", 3, "Invalid character(s) in term ' '"},
	{"regex with a multi-byte character", "%é%", 2, "multi-byte characters"},
	{"unterminated regex", "%abc", 1, "unterminated regular expression"},
	{"empty regex", "%%", 1, "empty regular expression"},
	{"regex that does not compile", "%a{2,1}%", 1, "invalid regular expression %a{2,1}%"},
	{"regex ending in a backslash", `%a\%`, 3, "unfinished escape"},
	{"regex too large", "%[a-z]{1000}[0-9]{1000}[A-Z]{1000}x{1000}y{1000}z{1000}%", 1, "the limit is 5000"},

	// JSON.
	{"unclosed brace", "{ $.a = 1", 1, "unclosed {"},
	{"empty JSON pattern", "{ }", 3, "the JSON pattern is empty"},
	{"comma between conditions (AWS)", `{ $.message = "error-response", $.path = "/authenticate" }`, 31, "Invalid character(s) in term ','"},
	{"quoted property name (AWS)", `{ $."sc-status" = 5* }`, 5, "expected a property name after ."},
	{"no selector", "{ a = 1 }", 3, "expected a property selector"},
	{"selector without a property", "{ $ = 1 }", 4, "a selector starts with $."},
	{"index without a property", "{ $[0] = 1 }", 4, "an array index must follow a property"},
	{"wildcard index", "{ $.a[*] = 1 }", 7, "[*] is not supported"},
	{"wildcard property", "{ $.* = 1 }", 5, "$.* is not supported"},
	{"unclosed index", "{ $.a[0 = 1 }", 8, "expected ] after the array index"},
	{"double equals", "{ $.a == 1 }", 7, "the equality operator is ="},
	{"no operator", "{ $.a 1 }", 7, "expected an operator"},
	{"no value", "{ $.a = }", 9, "expected a value after ="},
	{"value at the end", "{ $.a =", 8, "expected a value after ="},
	{"ordering against text", "{ $.a > abc }", 9, `> compares numbers; "abc" is not a number`},
	{"ordering against a quoted number", `{ $.a > "5" }`, 9, "is not a number"},
	{"unquoted value with @", "{ $.email = a@b.com }", 14, "Invalid character(s) in term '@'"},
	{"IS NOT", "{ $.a IS NOT NULL }", 7, "IS NOT is not supported"},
	{"IS something else", "{ $.a IS EMPTY }", 10, "expected TRUE, FALSE or NULL after IS"},
	{"EXISTS", "{ $.a EXISTS }", 7, "EXISTS is not supported; use $.a = * "},
	{"NOT without EXISTS", "{ $.a NOT NULL }", 11, "expected EXISTS after NOT"},
	{"unclosed parenthesis", "{ ($.a = 1 }", 12, "unexpected '}'; expected &&, || or )"},
	{"unclosed parenthesis at the end", "{ ($.a = 1", 3, "unclosed ("},
	{"dangling &&", "{ $.a = 1 && }", 14, "expected a property selector"},
	{"single &", "{ $.a = 1 & $.b = 2 }", 11, "Invalid character(s) in term '&'"},
	{"text after }", "{ $.a = 1 } ERROR", 13, `unexpected "ERROR" after the closing }`},
	{"regex with <", "{ $.a < %1% }", 9, "a regular expression compares only with = or !="},
	{"three regexes", "{ $.a = %a% || $.b = %b% || $.c = %c% }", 1, "at most 2 regular expressions; this one has 3"},
	{"bad character in the selector", "{ $.a/b = 1 }", 6, "Invalid character(s) in term '/'"},

	// Space-delimited.
	{"unclosed bracket", "[a, b", 1, "unclosed ["},
	{"empty brackets", "[]", 1, "names no field"},
	{"semicolon between fields", "[a; b]", 3, "Invalid character(s) in term ';'"},
	{"text after ]", "[a, b] c", 8, `unexpected "c" after the closing ]`},
	{"no field name", "[a, = 1]", 5, "expected a field name"},
	{"ordering against text in fields", "[a, b > x]", 9, "is not a number"},
	{"double equals in fields", "[a == 1]", 4, "the equality operator is ="},
	{"three regexes in fields", "[a = %a%, b = %b%, c = %c%]", 1, "at most 2 regular expressions"},
	{"unclosed parenthesis in fields", "[(a = 1, b]", 8, "expected &&, || or )"},

	// Length.
	{"too long", strings.Repeat("a", MaxPatternLength+1), 1, "the limit is 1024"},
}

func TestParseErrors(t *testing.T) {
	for _, c := range parseErrors {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.pattern)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", c.pattern, p)
			}
			if !errs.Is(err, errs.Invalid) || errs.ReasonOf(err) != InvalidPattern {
				t.Errorf("error %v: kind %v reason %q, want invalid %q", err, errs.KindOf(err), errs.ReasonOf(err), InvalidPattern)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v does not wrap a *SyntaxError", err)
			}
			if se.Column != c.column {
				t.Errorf("Parse(%q): column %d, want %d (%v)", c.pattern, se.Column, c.column, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.msg) {
				t.Errorf("Parse(%q): %q does not contain %q", c.pattern, msg, c.msg)
			}
			if !strings.HasPrefix(msg, "Invalid filter pattern: ") && !strings.HasPrefix(msg, "Invalid character(s) in term '") {
				t.Errorf("message %q does not start as CloudWatch Logs' do", msg)
			}
		})
	}
}

// TestParseAccepts lists patterns that must parse, whatever they match.
func TestParseAccepts(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("a", MaxPatternLength),
		"ERROR\t-\tWARN",
		`{ $.a = "}" }`,
		`{ $.a = "&&" && $.b = "||" }`,
		`[a = "]", b = ","]`,
		"{ $.a = -1.5e-3 || $.a < -.5 }",
		"{ $.a_b-c.D9[12].e = x }",
		"[ ... , a ]",
		"[a,]",
		"[,a]",
		"{ $.a = %a% && $.b = %b% }",
		"%a% %b% %c%", // the limit of two is for JSON and space-delimited patterns
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}
