// Package eventpattern is EventBridge's event pattern language: Compile
// turns a pattern (a JSON object) into a Pattern, Pattern.Match says
// whether an event (a JSON object) matches it, and a Set matches one event
// against many patterns at once, parsing the event once and visiting only
// the patterns whose required exact values the event has.
//
// The language is the one the EventBridge user guide documents (and that
// AWS's open-source Event Ruler implements): exact strings, numbers,
// booleans and null; prefix and suffix (optionally ignoring case);
// equals-ignore-case; wildcard; anything-but of values, prefixes,
// suffixes, case-insensitive values and wildcards; numeric ranges; cidr;
// exists; "$or"; nested objects; and arrays in events, where any element
// may match. Matching is array-consistent: the fields one object pattern
// names must all be matched by the same element of an array of objects.
//
// The package is pure and safe for concurrent use: a Pattern never
// changes after Compile, and a Set guards itself. Errors are typed: a
// pattern that does not compile is an *Error whose message has the shape
// of EventBridge's InvalidEventPatternException ("Event pattern is not
// valid. Reason: ..."); an event that is not a JSON object is an
// *EventError. See docs/event-patterns.md.
package eventpattern
