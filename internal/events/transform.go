package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

// pathStep is one step of a JSONPath: a member name or a list index.
type pathStep struct {
	name  string
	index int // -1 for a member
}

// parsePath reads the JSONPath subset EventBridge uses in InputPath and
// InputPathsMap: $, $.a.b, $.a[0].b, $['a b'].
func parsePath(p string) ([]pathStep, error) {
	bad := errors.New("invalid JSONPath " + p)
	if !strings.HasPrefix(p, "$") {
		return nil, bad
	}
	rest := p[1:]
	var steps []pathStep
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			if end == 0 {
				return nil, bad
			}
			steps = append(steps, pathStep{name: rest[:end], index: -1})
			rest = rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, bad
			}
			in := rest[1:end]
			rest = rest[end+1:]
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0] {
				steps = append(steps, pathStep{name: in[1 : len(in)-1], index: -1})
				continue
			}
			n, err := strconv.Atoi(in)
			if err != nil || n < 0 {
				return nil, bad
			}
			steps = append(steps, pathStep{index: n})
		default:
			return nil, bad
		}
	}
	return steps, nil
}

// extract returns the JSON value at path in doc, or nil when absent.
func extract(doc []byte, path string) json.RawMessage {
	steps, err := parsePath(path)
	if err != nil {
		return nil
	}
	cur := json.RawMessage(doc)
	for _, st := range steps {
		if st.index >= 0 {
			var arr []json.RawMessage
			if json.Unmarshal(cur, &arr) != nil || st.index >= len(arr) {
				return nil
			}
			cur = arr[st.index]
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil
		}
		v, ok := obj[st.name]
		if !ok {
			return nil
		}
		cur = v
	}
	return cur
}

// inputFor is what a target receives for an event: the event itself, the
// target's constant Input, the part InputPath selects, or the
// InputTransformer's template filled in. ruleName and ruleARN fill the
// reserved aws.events.* placeholders.
func inputFor(t *eventsapi.Target, event []byte, ruleName, ruleARN string, ingestion string) []byte {
	switch {
	case t.Input != nil:
		return []byte(*t.Input)
	case t.InputPath != nil:
		v := extract(event, *t.InputPath)
		if v == nil {
			return []byte("null")
		}
		return v
	case t.InputTransformer != nil:
		vals := map[string]json.RawMessage{}
		for k, p := range t.InputTransformer.InputPathsMap {
			vals[k] = extract(event, p)
		}
		vals["aws.events.rule-name"] = mustJSON(ruleName)
		vals["aws.events.rule-arn"] = mustJSON(ruleARN)
		vals["aws.events.event"] = event
		vals["aws.events.event.json"] = event
		vals["aws.events.event.ingestion-time"] = mustJSON(ingestion)
		return fillTemplate(*t.InputTransformer.InputTemplate, vals)
	}
	return event
}

// fillTemplate replaces <name> placeholders. Inside a JSON string a
// string value goes in as its text (escaped for the string) and any other
// value as its JSON text, escaped; outside a string a value goes in as
// JSON (null when missing). A template that is not JSON (a plain string)
// gets strings as their text and other values as JSON text.
func fillTemplate(tmpl string, vals map[string]json.RawMessage) []byte {
	jsonTemplate := strings.HasPrefix(strings.TrimSpace(tmpl), "{") || strings.HasPrefix(strings.TrimSpace(tmpl), "[") ||
		strings.HasPrefix(strings.TrimSpace(tmpl), "\"")
	var out bytes.Buffer
	inString := false
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c == '\\' && inString && i+1 < len(tmpl) {
			out.WriteByte(c)
			out.WriteByte(tmpl[i+1])
			i++
			continue
		}
		if c == '"' && jsonTemplate {
			inString = !inString
			out.WriteByte(c)
			continue
		}
		if c == '<' {
			if end := strings.IndexByte(tmpl[i:], '>'); end > 1 {
				name := tmpl[i+1 : i+end]
				if v, ok := vals[name]; ok {
					writeValue(&out, v, inString || !jsonTemplate, jsonTemplate)
					i += end
					continue
				}
			}
		}
		out.WriteByte(c)
	}
	return out.Bytes()
}

func writeValue(out *bytes.Buffer, v json.RawMessage, asText, escape bool) {
	if !asText {
		if v == nil {
			out.WriteString("null")
			return
		}
		out.Write(v)
		return
	}
	var text string
	if v == nil {
		text = ""
	} else if json.Unmarshal(v, &text) != nil {
		var c bytes.Buffer
		_ = json.Compact(&c, v)
		text = c.String()
	}
	if !escape {
		out.WriteString(text)
		return
	}
	q, _ := json.Marshal(text)
	out.Write(q[1 : len(q)-1])
}
