package audit

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
)

// alwaysSecret are member names whose values are never recorded, whatever
// the model says.
var alwaysSecret = []string{"password", "secretaccesskey", "sessiontoken", "authorizationtoken", "privatekey", "secretstring"}

// Redact returns params (a JSON document) with the values of sensitive
// members replaced by Redacted. Members are matched by name at any depth:
// those the API model marks sensitive, and a fixed set of secret names.
// Input that is not JSON is dropped entirely rather than recorded.
func Redact(params []byte, sensitive []string) json.RawMessage {
	if len(params) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(params, &v); err != nil {
		return nil
	}
	set := make(map[string]bool, len(sensitive)+len(alwaysSecret))
	for _, s := range sensitive {
		set[strings.ToLower(s)] = true
	}
	for _, s := range alwaysSecret {
		set[s] = true
	}
	v = redact(v, set)
	out, _ := json.Marshal(v)
	return out
}

func redact(v any, set map[string]bool) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if set[strings.ToLower(k)] {
				t[k] = Redacted
				continue
			}
			t[k] = redact(val, set)
		}
	case []any:
		for i := range t {
			t[i] = redact(t[i], set)
		}
	}
	return v
}

// resourceMembers maps request member names to CloudTrail resource types.
var resourceMembers = map[string]string{
	"cluster":           "AWS::ECS::Cluster",
	"clusterName":       "AWS::ECS::Cluster",
	"clusters":          "AWS::ECS::Cluster",
	"family":            "AWS::ECS::TaskDefinition",
	"taskDefinition":    "AWS::ECS::TaskDefinition",
	"taskDefinitions":   "AWS::ECS::TaskDefinition",
	"service":           "AWS::ECS::Service",
	"serviceName":       "AWS::ECS::Service",
	"services":          "AWS::ECS::Service",
	"task":              "AWS::ECS::Task",
	"tasks":             "AWS::ECS::Task",
	"containerInstance": "AWS::ECS::ContainerInstance",
	"resourceArn":       "AWS::ECS::Resource",
	"repositoryName":    "AWS::ECR::Repository",
}

// Resources lists the resources a request's top-level members name.
func Resources(params []byte) []Resource {
	var m map[string]json.RawMessage
	if json.Unmarshal(params, &m) != nil {
		return nil
	}
	var out []Resource
	for member, typ := range resourceMembers {
		raw, ok := m[member]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			out = append(out, Resource{Type: typ, Name: s})
			continue
		}
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			for _, s := range list {
				out = append(out, Resource{Type: typ, Name: s})
			}
		}
	}
	sortResources(out)
	return out
}

func sortResources(rs []Resource) {
	slices.SortFunc(rs, func(a, b Resource) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Name, b.Name))
	})
}
