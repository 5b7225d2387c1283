package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/api/cloudtrailapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/api/servicediscoveryapi"
	"github.com/berthdev/berth/internal/awsproto"
)

const (
	modelsDir = "../../internal/api/models"
	apiDir    = "../../internal/api"
)

// TestGeneratedCodeIsFresh is the golden test: the checked-in packages are
// exactly what the generator makes of the checked-in models.
func TestGeneratedCodeIsFresh(t *testing.T) {
	files, _, err := generateAll(modelsDir)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(apiDir, rel))
		if err != nil {
			t.Errorf("%s: %v; run go generate ./internal/api", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("internal/api/%s is stale: run go generate ./internal/api", rel)
		}
	}
	onDisk, err := filepath.Glob(filepath.Join(apiDir, "*", "zz_generated.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		rel, _ := filepath.Rel(apiDir, p)
		if _, ok := files[rel]; !ok {
			t.Errorf("internal/api/%s has no model any more: delete it", rel)
		}
	}
	if len(files) != 9 {
		t.Errorf("generated %d packages, want 9 (ecs, ecr, cloudtrail, logs, cloudwatch, elbv2, events, servicediscovery, application-autoscaling)", len(files))
	}
}

// TestModelsHaveNoProse checks the checked-in models carry no documentation
// and are written as the importer writes them.
func TestModelsHaveNoProse(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(modelsDir, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, word := range []string{`"documentation"`, `"documentationUrl"`, `"deprecatedMessage"`, `"examples"`, "<p>"} {
			if bytes.Contains(b, []byte(word)) {
				t.Errorf("%s contains %s", p, word)
			}
		}
		again, _, err := stripModel(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("%s is not in the importer's canonical form", p)
		}
	}
}

func TestEveryModelOperationIsServed(t *testing.T) {
	services := map[string]struct {
		svc   *awsproto.Service
		names []string
	}{
		"ecs":                     {(&ecsapi.Handlers{}).Service(), ecsapi.OperationNames()},
		"ecr":                     {(&ecrapi.Handlers{}).Service(), ecrapi.OperationNames()},
		"cloudtrail":              {(&cloudtrailapi.Handlers{}).Service(), cloudtrailapi.OperationNames()},
		"logs":                    {(&logsapi.Handlers{}).Service(), logsapi.OperationNames()},
		"cloudwatch":              {(&cloudwatchapi.Handlers{}).Service(), cloudwatchapi.OperationNames()},
		"elbv2":                   {(&elbv2api.Handlers{}).Service(), elbv2api.OperationNames()},
		"servicediscovery":        {(&servicediscoveryapi.Handlers{}).Service(), servicediscoveryapi.OperationNames()},
		"events":                  {(&eventsapi.Handlers{}).Service(), eventsapi.OperationNames()},
		"application-autoscaling": {(&applicationautoscalingapi.Handlers{}).Service(), applicationautoscalingapi.OperationNames()},
	}
	for base, s := range services {
		m, err := loadModel(filepath.Join(modelsDir, base+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.names, slices.Sorted(maps.Keys(m.Operations))) {
			t.Errorf("%s: OperationNames differs from the model", base)
		}
		if len(s.svc.Operations) != len(m.Operations) {
			t.Errorf("%s: Service has %d operations, the model %d", base, len(s.svc.Operations), len(m.Operations))
		}
		for name := range m.Operations {
			op := s.svc.Operations[name]
			if op == nil {
				t.Errorf("%s: %s missing from Service().Operations", base, name)
				continue
			}
			if op.Implemented || op.Decode == nil || op.Call == nil || op.NewInput == nil {
				t.Errorf("%s %s: want an unimplemented operation with Decode, NewInput and Call", base, name)
				continue
			}
			in, err := op.Decode([]byte(`{}`), nil)
			if in == nil && err == nil {
				t.Errorf("%s %s: Decode returned neither input nor error", base, name)
			}
			if err != nil {
				continue // {} misses required members; validation is tested elsewhere
			}
			_, err = op.Call(t.Context(), in)
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != awsproto.CodeNotImplemented || !strings.Contains(ae.Message, name) {
				t.Errorf("%s %s: nil handler answered %v", base, name, err)
			}
		}
	}
	if ro := services["ecr"].svc.Operations; !ro["BatchCheckLayerAvailability"].ReadOnly || !ro["GetAuthorizationToken"].ReadOnly || ro["PutImage"].ReadOnly {
		t.Error("ECR read-only classification")
	}
}

func TestStripModel(t *testing.T) {
	in := `{
	  "version": "2.0",
	  "documentation": "<p>The service.</p>",
	  "metadata": {"apiVersion": "2020-01-01", "protocol": "json", "signingName": "thing", "serviceId": "Thing"},
	  "operations": {
	    "DoIt": {"name": "DoIt", "http": {"method": "POST", "requestUri": "/"},
	      "input": {"shape": "DoItRequest", "documentation": "in"},
	      "errors": [{"shape": "Oops", "documentation": "<p>when</p>"}],
	      "documentation": "<p>Does it.</p>", "documentationUrl": "https://example.com", "deprecated": true, "deprecatedMessage": "old"}
	  },
	  "shapes": {
	    "DoItRequest": {"type": "structure", "required": ["documentation"],
	      "members": {"documentation": {"shape": "Text", "documentation": "<p>A member named documentation.</p>"}},
	      "documentation": "<p>x</p>"},
	    "Text": {"type": "string", "min": 1, "max": 100.0, "pattern": "[a-z<>&]+", "sensitive": true},
	    "Oops": {"type": "structure", "members": {}, "exception": true, "error": {"httpStatusCode": 409}}
	  }
	}`
	out, name, err := stripModel([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if name != "thing" {
		t.Errorf("name %q", name)
	}
	want := `{
 "metadata": {
  "apiVersion": "2020-01-01",
  "protocol": "json",
  "serviceId": "Thing",
  "signingName": "thing"
 },
 "operations": {
  "DoIt": {
   "deprecated": true,
   "errors": [
    {
     "shape": "Oops"
    }
   ],
   "http": {
    "method": "POST",
    "requestUri": "/"
   },
   "input": {
    "shape": "DoItRequest"
   },
   "name": "DoIt"
  }
 },
 "shapes": {
  "DoItRequest": {
   "members": {
    "documentation": {
     "shape": "Text"
    }
   },
   "required": [
    "documentation"
   ],
   "type": "structure"
  },
  "Oops": {
   "error": {
    "httpStatusCode": 409
   },
   "exception": true,
   "members": {},
   "type": "structure"
  },
  "Text": {
   "max": 100.0,
   "min": 1,
   "pattern": "[a-z<>&]+",
   "sensitive": true,
   "type": "string"
  }
 },
 "version": "2.0"
}
`
	if string(out) != want {
		t.Errorf("stripped model:\n%s\nwant:\n%s", out, want)
	}
}

func TestStripModelRejectsUnknownKeys(t *testing.T) {
	_, _, err := stripModel([]byte(`{"shapes": {"A": {"type": "string", "summary": "prose?"}}}`))
	if err == nil || !strings.Contains(err.Error(), `"summary" at shapes.A.summary`) {
		t.Errorf("got %v", err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"clusterName": "ClusterName", "TrailARN": "TrailARN", "__string": "String",
		"ipv6Address": "Ipv6Address", "2fa": "X2fa", "a-b.c": "ABC",
	} {
		if got := exportName(in); got != want {
			t.Errorf("exportName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"bridge": "Bridge", "FARGATE_SPOT": "FargateSpot", "ecs.availability-zone": "EcsAvailabilityZone",
		"x86_64": "X8664", "NetworkAdapter": "NetworkAdapter", "radeon-pro-v520": "RadeonProV520",
		"*": "",
	} {
		if got := enumValueName(in); got != want {
			t.Errorf("enumValueName(%q) = %q, want %q", in, got, want)
		}
	}
	n := namer{}
	if a, b, c := n.claim("X"), n.claim("X"), n.claim("X"); a != "X" || b != "X2" || c != "X3" {
		t.Errorf("claims %s %s %s", a, b, c)
	}
	if packageName("application-autoscaling") != "applicationautoscalingapi" {
		t.Error(packageName("application-autoscaling"))
	}
}

// A small model with the awkward cases the real ones lack.
const quirkyModel = `{
 "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "api.thing", "jsonVersion": "1.0",
  "protocol": "json", "serviceId": "Thing", "targetPrefix": "Thing_20200101"},
 "operations": {
  "Ping": {"name": "Ping", "http": {"method": "POST", "requestUri": "/"}},
  "Put": {"name": "Put", "http": {"method": "POST", "requestUri": "/"},
   "input": {"shape": "Handlers"}, "output": {"shape": "PutResult"}, "errors": [{"shape": "Oops"}]}
 },
 "shapes": {
  "Handlers": {"type": "structure", "required": ["mode"], "members": {
   "mode": {"shape": "Mode"}, "Mode": {"shape": "Word"}, "validate": {"shape": "Word"},
   "secret": {"shape": "Secret"}, "words": {"shape": "Words"}, "table": {"shape": "Table"},
   "nested": {"shape": "Nested"}, "doc": {"shape": "Doc"}, "when": {"shape": "When"}, "n": {"shape": "Big"}}},
  "Mode": {"type": "string", "enum": ["on", "ON", "*", "x86_64"]},
  "Word": {"type": "string", "pattern": "^(?!bad)\\w+$"},
  "Secret": {"type": "string", "min": 8, "sensitive": true},
  "Words": {"type": "list", "member": {"shape": "Short"}, "min": 1},
  "Short": {"type": "string", "max": 3},
  "Table": {"type": "map", "key": {"shape": "Short"}, "value": {"shape": "Words"}},
  "Nested": {"type": "list", "member": {"shape": "Words"}},
  "Doc": {"type": "structure", "members": {}, "document": true},
  "When": {"type": "timestamp"},
  "Big": {"type": "integer", "min": -3000000000, "max": 5},
  "PutResult": {"type": "structure", "members": {}},
  "Oops": {"type": "structure", "members": {"message": {"shape": "Word"}}, "exception": true,
   "error": {"code": "OopsCode", "httpStatusCode": 409}}
 }
}`

func TestGenerateQuirks(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(quirkyModel))
	dec.UseNumber()
	var m model
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if err := m.check(); err != nil {
		t.Fatal(err)
	}
	src, err := generate(&m, "thing", "thingapi")
	if err != nil {
		t.Fatal(err)
	}
	typeCheck(t, src)
	code := strings.Join(strings.Fields(string(src)), " ") // spacing aside
	for _, want := range []string{
		"type Handlers2 struct", // a shape named like the generated Handlers type
		"Put func(ctx context.Context, in *Handlers2) (*PutResult, error)",
		"type PingRequest struct{}",  // operation without input
		"type PingResponse struct{}", // and without output
		"func (in *PingRequest) Validate() error { return nil }",
		`ModeOn Mode = "on"`, `ModeOn2 Mode = "ON"`, `ModeValue Mode = "*"`, `ModeX8664 Mode = "x86_64"`,
		"Mode2 *Mode `json:\"mode,omitzero\"`", // members colliding after capitalisation
		"Validate2 *string",                    // or with the Validate method
		"json.RawMessage", "*awsproto.Time",
		`ErrOops = "OopsCode"`, "(HTTP 409)",
		"Protocol: awsproto.JSON10",
		`EventSource: "api.thing.amazonaws.com"`,
		`[]string{"secret"}`,
		"Word: ^(?!bad)\\w+$",                                          // listed as not checked
		`v.Check(p+"secret", *s.Secret, true, checkSecret(*s.Secret))`, // sensitive: value not echoed
		`p+"nested."+strconv.Itoa(i0+1)+".member"`,
		`"Map keys"`,
		"if s > 5 {", // but no check of a minimum below the int32 range
		"type PutResult struct{}",
		"Handlers2 is the input of Put; model shape Handlers.",
	} {
		if !strings.Contains(code, want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	if strings.Contains(code, "-3000000000") {
		t.Error("a bound outside int32 was generated")
	}
	if strings.Contains(code, "patternWord") {
		t.Error("a pattern RE2 rejects was compiled")
	}
	if t.Failed() {
		t.Log(string(src))
	}
}

// typeCheck type-checks a generated package from source, as if it lived
// in this directory of the module.
func typeCheck(t *testing.T, src []byte) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(dir, "zz_generated.go"), src, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Export data of the imports, from the build cache.
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}",
		"github.com/berthdev/berth/internal/awsproto", "context", "encoding/json", "maps", "regexp",
		"slices", "strconv", "unicode/utf8").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	export := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, file, _ := strings.Cut(line, "=")
		export[path] = file
	}
	lookup := func(path string) (io.ReadCloser, error) {
		if export[path] == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(export[path])
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup)}
	if _, err := conf.Check("thingapi", fset, []*ast.File{f}, nil); err != nil {
		t.Errorf("generated code does not type-check: %v\n%s", err, src)
	}
}

// A former query service served over CBOR, JSON and query gets the facts
// the front door needs for all three; a single-protocol one gets none.
func TestGenerateProtocolFacts(t *testing.T) {
	const multi = `{
 "metadata": {"apiVersion": "2010-08-01", "endpointPrefix": "thing", "jsonVersion": "1.0",
  "protocol": "smithy-rpc-v2-cbor", "protocols": ["smithy-rpc-v2-cbor", "json", "query"],
  "awsQueryCompatible": {}, "xmlNamespace": "http://thing.amazonaws.com/doc/2010-08-01/",
  "serviceId": "Thing", "targetPrefix": "Thing_20100801"},
 "operations": {"Put": {"name": "Put", "http": {"method": "POST", "requestUri": "/"}, "errors": [{"shape": "Gone"}, {"shape": "Boom"}]}},
 "shapes": {
  "Gone": {"type": "structure", "members": {}, "exception": true, "error": {"code": "ResourceNotFound", "httpStatusCode": 404, "senderFault": true}},
  "Boom": {"type": "structure", "members": {}, "exception": true, "error": {"code": "InternalError", "httpStatusCode": 500}},
  "Odd": {"type": "structure", "members": {}, "exception": true}
 }
}`
	gen := func(doc string) string {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var m model
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if err := m.check(); err != nil {
			t.Fatal(err)
		}
		src, err := generate(&m, "thing", "thingapi")
		if err != nil {
			t.Fatal(err)
		}
		typeCheck(t, src)
		return strings.Join(strings.Fields(string(src)), " ")
	}
	code := gen(multi)
	for _, want := range []string{
		"Protocol: awsproto.JSON10,",
		"Protocols: []awsproto.Protocol{awsproto.RPCv2CBOR, awsproto.JSON10, awsproto.Query},",
		`XMLNamespace: "http://thing.amazonaws.com/doc/2010-08-01/",`,
		"QueryCompatible: true,",
		`{Shape: "Boom", Code: "InternalError", Status: 500, Sender: false},`,
		`{Shape: "Gone", Code: "ResourceNotFound", Status: 404, Sender: true},`,
		`{Shape: "Odd", Code: "Odd", Status: 0, Sender: true},`,
		`ErrGone = "ResourceNotFound"`,
	} {
		if !strings.Contains(code, want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	// A query-only service (ELBv2): Protocol Query, its namespace and
	// errors, not query-compatible.
	queryOnly := gen(`{
 "metadata": {"apiVersion": "2015-12-01", "endpointPrefix": "thing", "protocol": "query", "protocols": ["query"],
  "xmlNamespace": "http://thing.amazonaws.com/doc/2015-12-01/", "serviceId": "Thing"},
 "operations": {"Put": {"name": "Put", "http": {"method": "POST", "requestUri": "/"}, "errors": [{"shape": "GoneException"}]}},
 "shapes": {
  "GoneException": {"type": "structure", "members": {}, "exception": true, "error": {"code": "Gone", "httpStatusCode": 400, "senderFault": true}}
 }
}`)
	for _, want := range []string{
		"Protocol: awsproto.Query,",
		`XMLNamespace: "http://thing.amazonaws.com/doc/2015-12-01/",`,
		`{Shape: "GoneException", Code: "Gone", Status: 400, Sender: true},`,
		`ErrGoneException = "Gone"`,
	} {
		if !strings.Contains(queryOnly, want) {
			t.Errorf("query-only: generated code lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Protocols:", "QueryCompatible:"} {
		if strings.Contains(queryOnly, unwanted) {
			t.Errorf("a query-only service got %q", unwanted)
		}
	}
	single := gen(quirkyModel)
	for _, unwanted := range []string{"Protocols:", "XMLNamespace:", "QueryCompatible:", "ModeledError"} {
		if strings.Contains(single, unwanted) {
			t.Errorf("a single-protocol service got %q", unwanted)
		}
	}
}
