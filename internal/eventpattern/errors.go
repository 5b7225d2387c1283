package eventpattern

import (
	"fmt"
	"strings"
)

// Error is a pattern that does not compile. Its message has the shape of
// EventBridge's InvalidEventPatternException message; the EventBridge API
// answers InvalidEventPatternException with Error() as the message.
type Error struct {
	Reason string // what is wrong, in Event Ruler's wording ("Empty arrays are not allowed")
	Offset int    // byte offset in the pattern where it was found
	Line   int    // 1-based line of Offset
	Column int    // 1-based column of Offset
	source string
}

func (e *Error) Error() string {
	src := e.source
	if len(src) > 500 {
		src = fmt.Sprintf("%s\"[truncated %d chars]", src[:500], len(src)-500)
	} else {
		src += `"`
	}
	return fmt.Sprintf("Event pattern is not valid. Reason: %s\n at [Source: (String)\"%s; line: %d, column: %d]",
		e.Reason, src, e.Line, e.Column)
}

func newError(src string, off int, format string, args ...any) *Error {
	if off > len(src) {
		off = len(src)
	}
	line := 1 + strings.Count(src[:off], "\n")
	col := off - strings.LastIndexByte(src[:off], '\n')
	return &Error{Reason: fmt.Sprintf(format, args...), Offset: off, Line: line, Column: col, source: src}
}

// EventError is an event that is not a JSON object.
type EventError struct {
	Reason string
	Offset int
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event is not valid JSON: %s at offset %d", e.Reason, e.Offset)
}
