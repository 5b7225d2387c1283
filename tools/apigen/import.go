package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// importService reads the newest service-2 model of the botocore service
// svc under dataDir, strips it to facts and writes it to
// modelsDir/<signingName or svc>.json. It returns the written path.
func importService(dataDir, svc, modelsDir string) (string, error) {
	src, err := newestModel(filepath.Join(dataDir, svc))
	if err != nil {
		return "", err
	}
	raw, err := readMaybeGzip(src)
	if err != nil {
		return "", err
	}
	out, name, err := stripModel(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	if name == "" {
		name = svc
	}
	if err := os.MkdirAll(modelsDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(modelsDir, name+".json")
	return path, os.WriteFile(path, out, 0o644)
}

// newestModel returns the service-2 file of the newest API version (version
// directories are dates, so the lexically greatest is the newest).
func newestModel(svcDir string) (string, error) {
	entries, err := os.ReadDir(svcDir)
	if err != nil {
		return "", err
	}
	var versions []string
	for _, e := range entries {
		if e.IsDir() {
			versions = append(versions, e.Name())
		}
	}
	slices.Sort(versions)
	for i := len(versions) - 1; i >= 0; i-- {
		for _, f := range []string{"service-2.json.gz", "service-2.json"} {
			p := filepath.Join(svcDir, versions[i], f)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no service-2.json(.gz) under any version directory", svcDir)
}

func readMaybeGzip(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return b, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// stripModel parses a botocore service-2 document and re-encodes it without
// prose, with sorted keys and a one-space indent. It also returns the name
// the model file takes: metadata.signingName, if the model has one.
//
// Every key of the model is classified by where it occurs (see the tables
// below) as a fact to keep or as prose to drop. An unknown key is an error,
// so that no new kind of prose slips into the checked-in models unnoticed
// and no new fact is silently lost: classify it here.
func stripModel(raw []byte) ([]byte, string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep min/max exactly as written
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, "", err
	}
	stripped, err := stripObject(doc, rootKeys, "")
	if err != nil {
		return nil, "", err
	}
	var name string
	if md, ok := stripped["metadata"].(map[string]any); ok {
		name, _ = md["signingName"].(string)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // patterns keep their < > &
	enc.SetIndent("", " ")
	if err := enc.Encode(stripped); err != nil { // map keys come out sorted
		return nil, "", err
	}
	return buf.Bytes(), name, nil
}

// A keyRule says what to do with one key of a model object.
type keyRule struct {
	drop bool // prose: leave it out

	// At most one of these describes the value when it is kept; with none,
	// the value is kept as it is (it holds no prose).
	object map[string]keyRule // an object of these keys
	named  map[string]keyRule // an object of user-chosen names, each an object of these keys
	listOf map[string]keyRule // a list of objects of these keys
}

var (
	keep  = keyRule{}
	prose = keyRule{drop: true}
)

// refKeys are the keys of a reference to a shape: an operation's input and
// output, an error, a structure member, a list member, a map key or value.
var refKeys = map[string]keyRule{
	"shape":             keep,
	"documentation":     prose,
	"documentationUrl":  prose,
	"deprecatedMessage": prose,
	"deprecated":        keep,
	"deprecatedSince":   keep,
	"box":               keep,
	"contextParam":      keep,
	"enum":              keep,
	"error":             keep,
	"eventpayload":      keep,
	"exception":         keep,
	"flattened":         keep,
	"hostLabel":         keep,
	"idempotencyToken":  keep,
	"jsonvalue":         keep,
	"location":          keep,
	"locationName":      keep,
	"queryName":         keep,
	"resultWrapper":     keep,
	"streaming":         keep,
	"timestampFormat":   keep,
	"xmlAttribute":      keep,
	"xmlNamespace":      keep,
}

var shapeKeys = map[string]keyRule{
	"type":              keep,
	"documentation":     prose,
	"documentationUrl":  prose,
	"deprecatedMessage": prose,
	"members":           {named: refKeys},
	"member":            {object: refKeys},
	"key":               {object: refKeys},
	"value":             {object: refKeys},
	"required":          keep,
	"enum":              keep,
	"min":               keep,
	"max":               keep,
	"pattern":           keep,
	"sensitive":         keep,
	"exception":         keep,
	"fault":             keep,
	"error":             keep,
	"retryable":         keep,
	"box":               keep,
	"deprecated":        keep,
	"deprecatedSince":   keep,
	"document":          keep,
	"union":             keep,
	"event":             keep,
	"eventstream":       keep,
	"streaming":         keep,
	"requiresLength":    keep,
	"sparse":            keep,
	"synthetic":         keep,
	"wrapper":           keep,
	"flattened":         keep,
	"locationName":      keep,
	"payload":           keep,
	"timestampFormat":   keep,
	"xmlNamespace":      keep,
	"xmlOrder":          keep,
}

var operationKeys = map[string]keyRule{
	"name":                   keep,
	"documentation":          prose,
	"documentationUrl":       prose,
	"deprecatedMessage":      prose,
	"http":                   keep,
	"input":                  {object: refKeys},
	"output":                 {object: refKeys},
	"errors":                 {listOf: refKeys},
	"readonly":               keep,
	"idempotent":             keep,
	"deprecated":             keep,
	"deprecatedSince":        keep,
	"auth":                   keep,
	"authtype":               keep,
	"endpoint":               keep,
	"endpointdiscovery":      keep,
	"endpointoperation":      keep,
	"httpChecksum":           keep,
	"httpChecksumRequired":   keep,
	"operationContextParams": keep,
	"requestcompression":     keep,
	"staticContextParams":    keep,
	"unsignedPayload":        keep,
}

var metadataKeys = map[string]keyRule{
	"apiVersion":          keep,
	"auth":                keep,
	"awsQueryCompatible":  keep,
	"checksumFormat":      keep,
	"endpointPrefix":      keep,
	"globalEndpoint":      keep,
	"jsonVersion":         keep,
	"protocol":            keep,
	"protocolSettings":    keep,
	"protocols":           keep,
	"ripServiceName":      keep,
	"serviceAbbreviation": keep,
	"serviceFullName":     keep,
	"serviceId":           keep,
	"signatureVersion":    keep,
	"signingName":         keep,
	"targetPrefix":        keep,
	"uid":                 keep,
	"xmlNamespace":        keep,
}

var rootKeys = map[string]keyRule{
	"version":           keep,
	"metadata":          {object: metadataKeys},
	"operations":        {named: operationKeys},
	"shapes":            {named: shapeKeys},
	"documentation":     prose,
	"documentationUrl":  prose,
	"examples":          prose,
	"deprecated":        keep,
	"deprecatedMessage": prose,
	"clientContextParams": {named: map[string]keyRule{
		"type":          keep,
		"documentation": prose,
	}},
}

func stripObject(obj map[string]any, rules map[string]keyRule, at string) (map[string]any, error) {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		where := joinPath(at, k)
		rule, ok := rules[k]
		if !ok {
			return nil, fmt.Errorf("unknown model key %q at %s: classify it as a fact or as prose in tools/apigen/import.go", k, where)
		}
		if rule.drop {
			continue
		}
		nv, err := stripValue(v, rule, where)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

func stripValue(v any, rule keyRule, at string) (any, error) {
	switch {
	case rule.object != nil:
		o, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected an object", at)
		}
		return stripObject(o, rule.object, at)
	case rule.named != nil:
		o, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected an object", at)
		}
		out := make(map[string]any, len(o))
		for name, item := range o {
			io, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: expected an object", joinPath(at, name))
			}
			s, err := stripObject(io, rule.named, joinPath(at, name))
			if err != nil {
				return nil, err
			}
			out[name] = s
		}
		return out, nil
	case rule.listOf != nil:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected a list", at)
		}
		out := make([]any, len(l))
		for i, item := range l {
			io, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: expected an object", at, i)
			}
			s, err := stripObject(io, rule.listOf, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return v, nil
}

func joinPath(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
