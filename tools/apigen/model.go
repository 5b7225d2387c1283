package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
)

// model is the part of a (stripped) service-2 document the generator reads.
type model struct {
	Metadata   metadata              `json:"metadata"`
	Operations map[string]*operation `json:"operations"`
	Shapes     map[string]*shape     `json:"shapes"`
}

type metadata struct {
	APIVersion     string   `json:"apiVersion"`
	EndpointPrefix string   `json:"endpointPrefix"`
	JSONVersion    string   `json:"jsonVersion"`
	Protocol       string   `json:"protocol"`
	Protocols      []string `json:"protocols"`
	ServiceID      string   `json:"serviceId"`
	SigningName    string   `json:"signingName"`
	TargetPrefix   string   `json:"targetPrefix"`
	XMLNamespace   string   `json:"xmlNamespace"`
	// AWSQueryCompatible is present (an empty object) on former query
	// services now served over JSON or CBOR too.
	AWSQueryCompatible *json.RawMessage `json:"awsQueryCompatible"`
}

type operation struct {
	Name     string `json:"name"`
	Input    *ref   `json:"input"`
	Output   *ref   `json:"output"`
	Errors   []ref  `json:"errors"`
	ReadOnly bool   `json:"readonly"`
}

// ref points at a shape: a member, a list member, a map key or value, an
// operation's input, output or error.
type ref struct {
	Shape string `json:"shape"`
}

type shape struct {
	Type            string          `json:"type"`
	Members         map[string]*ref `json:"members"`
	Required        []string        `json:"required"`
	Enum            []string        `json:"enum"`
	Min             *json.Number    `json:"min"`
	Max             *json.Number    `json:"max"`
	Pattern         string          `json:"pattern"`
	Sensitive       bool            `json:"sensitive"`
	Exception       bool            `json:"exception"`
	Fault           bool            `json:"fault"`
	Document        bool            `json:"document"`
	Union           bool            `json:"union"`
	Deprecated      bool            `json:"deprecated"`
	TimestampFormat string          `json:"timestampFormat"`
	Member          *ref            `json:"member"`
	Key             *ref            `json:"key"`
	Value           *ref            `json:"value"`
	Error           *struct {
		Code           string `json:"code"`
		HTTPStatusCode int    `json:"httpStatusCode"`
		SenderFault    bool   `json:"senderFault"`
	} `json:"error"`
}

func loadModel(path string) (*model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// check verifies that every reference names a shape of a known type.
func (m *model) check() error {
	known := map[string]bool{"structure": true, "list": true, "map": true, "string": true, "boolean": true,
		"integer": true, "long": true, "float": true, "double": true, "timestamp": true, "blob": true,
		"byte": true, "short": true, "bigdecimal": true, "biginteger": true}
	exists := func(r *ref, where string) error {
		if r == nil {
			return nil
		}
		if _, ok := m.Shapes[r.Shape]; !ok {
			return fmt.Errorf("%s refers to unknown shape %q", where, r.Shape)
		}
		return nil
	}
	for name, op := range m.Operations {
		if op.Name != name {
			return fmt.Errorf("operation %q is named %q", name, op.Name)
		}
		if err := exists(op.Input, name+".input"); err != nil {
			return err
		}
		if err := exists(op.Output, name+".output"); err != nil {
			return err
		}
		for i := range op.Errors {
			if err := exists(&op.Errors[i], name+".errors"); err != nil {
				return err
			}
		}
	}
	for name, s := range m.Shapes {
		if !known[s.Type] {
			return fmt.Errorf("shape %q has unknown type %q", name, s.Type)
		}
		for mn, r := range s.Members {
			if err := exists(r, name+"."+mn); err != nil {
				return err
			}
		}
		for _, r := range []*ref{s.Member, s.Key, s.Value} {
			if err := exists(r, name); err != nil {
				return err
			}
		}
		if _, _, err := s.bounds(); err != nil {
			return fmt.Errorf("shape %q: %w", name, err)
		}
		for _, req := range s.Required {
			if _, ok := s.Members[req]; !ok {
				return fmt.Errorf("shape %q requires unknown member %q", name, req)
			}
		}
	}
	return nil
}

// isJSON reports whether the service speaks a JSON 1.x protocol.
func (m *model) isJSON() bool {
	if m.Metadata.Protocol == "json" {
		return true
	}
	for _, p := range m.Metadata.Protocols {
		if p == "json" {
			return true
		}
	}
	return false
}

// isQuery reports whether the service speaks the query protocol.
func (m *model) isQuery() bool {
	return m.Metadata.Protocol == "query" || slices.Contains(m.Metadata.Protocols, "query")
}

// queryOnly reports whether query is the only protocol the service speaks
// that the front door serves (ELBv2).
func (m *model) queryOnly() bool {
	return !m.isJSON() && m.isQuery() && !slices.Contains(m.Metadata.Protocols, "smithy-rpc-v2-cbor")
}

// protocols returns the front door's names of the protocols the service
// speaks that it serves, in model order ("smithy-rpc-v2-cbor", "json",
// "query"); others (rest-json, rest-xml, ec2) are left out.
func (m *model) protocols() []string {
	list := m.Metadata.Protocols
	if len(list) == 0 {
		list = []string{m.Metadata.Protocol}
	}
	var out []string
	for _, p := range list {
		switch p {
		case "smithy-rpc-v2-cbor":
			out = append(out, "awsproto.RPCv2CBOR")
		case "json":
			if m.Metadata.JSONVersion == "1.0" {
				out = append(out, "awsproto.JSON10")
			} else {
				out = append(out, "awsproto.JSON11")
			}
		case "query":
			out = append(out, "awsproto.Query")
		}
	}
	return out
}

// isEnum reports whether s is a string shape with an enum.
func (s *shape) isEnum() bool { return s.Type == "string" && len(s.Enum) > 0 }

// isStruct reports whether s is a structure that becomes a Go struct (not a
// free-form document).
func (s *shape) isStruct() bool { return s.Type == "structure" && !s.Document }

func (s *shape) required(member string) bool {
	for _, r := range s.Required {
		if r == member {
			return true
		}
	}
	return false
}

// bound is a min or max constraint as written in the model.
type bound struct {
	text string // as in the model: "1", "100.0"
	f    float64
}

func parseBound(n *json.Number) (*bound, error) {
	if n == nil {
		return nil, nil
	}
	f, err := strconv.ParseFloat(string(*n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("bad bound %q", *n)
	}
	return &bound{text: string(*n), f: f}, nil
}

func (s *shape) bounds() (lo, hi *bound, err error) {
	if lo, err = parseBound(s.Min); err != nil {
		return nil, nil, err
	}
	hi, err = parseBound(s.Max)
	return lo, hi, err
}
