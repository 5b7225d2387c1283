// Package awslogs is the node agent's implementation of ECS's awslogs log
// driver. Docker runs the container with its json-file driver (so `docker
// logs` keeps working and nothing remote can block a container's start or
// its writes); the agent follows the container's output from Docker, groups
// lines into events (awslogs-multiline-pattern, awslogs-datetime-format),
// batches them within PutLogEvents' limits and ships them to the control
// plane over the authenticated agent channel, which writes them to
// CloudWatch Logs. What was acknowledged is checkpointed per container in
// the agent's data directory, so an agent or server restart resumes where
// it stopped: delivery is at least once (docs/awslogs.md).
//
// The decisions (options, stream names, the strftime conversion, grouping,
// batching, the resume position) are pure functions and small types; the
// shell is Shipper (one container) and Manager (the agent's shippers).
package awslogs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Driver is the logConfiguration.logDriver value this package implements.
const Driver = "awslogs"

// Option names of the awslogs driver (ECS's and Docker's).
const (
	OptGroup            = "awslogs-group"
	OptRegion           = "awslogs-region"
	OptStreamPrefix     = "awslogs-stream-prefix"
	OptStream           = "awslogs-stream"
	OptCreateGroup      = "awslogs-create-group"
	OptDatetimeFormat   = "awslogs-datetime-format"
	OptMultilinePattern = "awslogs-multiline-pattern"
	OptEndpoint         = "awslogs-endpoint"
	OptMode             = "mode"
	OptMaxBufferSize    = "max-buffer-size"
)

// Options are a container's awslogs options, parsed.
type Options struct {
	Group        string
	StreamPrefix string
	// Stream is awslogs-stream (Docker's option): the stream name when
	// there is no prefix.
	Stream      string
	CreateGroup bool
	// Multiline starts a new event at every line it matches; nil: every
	// line is an event. From awslogs-datetime-format when set (it takes
	// precedence, as in Docker), else awslogs-multiline-pattern.
	Multiline *regexp.Regexp
	// Mode ("blocking", "non-blocking") and MaxBufferSize go to Docker as
	// log options of the json-file driver.
	Mode          string
	MaxBufferSize string
}

// ParseOptions reads a container's awslogs options. It fails (Invalid)
// on what Docker's awslogs driver refuses: no group, a create-group that
// is not a boolean, a pattern that does not compile, a bad mode.
func ParseOptions(opts map[string]string) (Options, error) {
	o := Options{Group: opts[OptGroup], StreamPrefix: opts[OptStreamPrefix], Stream: opts[OptStream],
		Mode: opts[OptMode], MaxBufferSize: opts[OptMaxBufferSize]}
	if o.Group == "" {
		return Options{}, errs.E(errs.Invalid, "awslogs: the option %s is required", OptGroup)
	}
	if v := opts[OptCreateGroup]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Options{}, errs.E(errs.Invalid, "awslogs: %s must be true or false, not %q", OptCreateGroup, v)
		}
		o.CreateGroup = b
	}
	switch o.Mode {
	case "", "blocking", "non-blocking":
	default:
		return Options{}, errs.E(errs.Invalid, "logger: logging mode not supported: %s", o.Mode)
	}
	if o.MaxBufferSize != "" && o.Mode != "non-blocking" {
		return Options{}, errs.E(errs.Invalid, "logger: max-buffer-size option is only supported with 'mode=non-blocking'")
	}
	pattern := opts[OptMultilinePattern]
	if f := opts[OptDatetimeFormat]; f != "" {
		pattern = DatetimePattern(f)
	}
	if pattern != "" {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return Options{}, errs.E(errs.Invalid, "awslogs could not parse multiline pattern key %q: %v", pattern, err)
		}
		o.Multiline = re
	}
	return o, nil
}

// StreamName is the log stream of a container: "<prefix>/<container
// name>/<task id>" with awslogs-stream-prefix (ECS's naming), else
// awslogs-stream, else the Docker container id (Docker's default, which
// ECS keeps on EC2 without a prefix).
func (o Options) StreamName(container, taskID, dockerID string) string {
	switch {
	case o.StreamPrefix != "":
		return o.StreamPrefix + "/" + container + "/" + taskID
	case o.Stream != "":
		return o.Stream
	}
	return dockerID
}

// DockerLogOptions are the json-file log options of an awslogs
// container: Docker's generic delivery options (mode, max-buffer-size)
// from the definition, and a bounded local file (20 MiB x 5, the size of
// Docker's own dual-logging cache) the agent reads from.
func (o Options) DockerLogOptions() map[string]string {
	m := map[string]string{"max-size": "20m", "max-file": "5"}
	if o.Mode != "" {
		m[OptMode] = o.Mode
	}
	if o.MaxBufferSize != "" {
		m[OptMaxBufferSize] = o.MaxBufferSize
	}
	return m
}

// strftime codes Docker's awslogs driver understands, as regular
// expressions (docs.docker.com, awslogs-datetime-format).
var strftime = map[byte]string{
	'a': `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)`,
	'A': `(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)`,
	'w': `[0-6]`,
	'd': `(?:0[1-9]|[12][0-9]|3[01])`,
	'b': `(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)`,
	'B': `(?:January|February|March|April|May|June|July|August|September|October|November|December)`,
	'm': `(?:0[1-9]|1[0-2])`,
	'Y': `\d{4}`,
	'y': `\d{2}`,
	'H': `(?:[01][0-9]|2[0-3])`,
	'I': `(?:0[0-9]|1[0-2])`,
	'p': `[AP]M`,
	'M': `[0-5][0-9]`,
	'S': `[0-5][0-9]`,
	'f': `\d{6}`,
	'z': `[+-]\d{4}`,
	'Z': `[A-Z]{1,4}T`,
	'j': `(?:00[1-9]|0[1-9][0-9]|[12][0-9][0-9]|3[0-5][0-9]|36[0-6])`,
	'L': `\.\d{3}`,
}

// DatetimePattern converts an awslogs-datetime-format (strftime codes in
// a regular expression, as Docker takes it: `\[%b %d, %Y %H:%M:%S\]`)
// into the regular expression Docker's driver matches lines with. A code
// Docker does not know is dropped, as Docker does; everything else is
// kept as written (it is a regular expression already).
func DatetimePattern(format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) {
			b.WriteString(strftime[format[i+1]])
			i++
			continue
		}
		b.WriteByte(format[i])
	}
	return b.String()
}

// String describes the options for logs.
func (o Options) String() string {
	return fmt.Sprintf("group=%s prefix=%s create=%v multiline=%v", o.Group, o.StreamPrefix, o.CreateGroup, o.Multiline != nil)
}
