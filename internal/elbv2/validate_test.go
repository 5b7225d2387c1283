package elbv2

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
)

// codeOf is the ELBv2 code MapError answers for err.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	if e := MapError(err); e != nil {
		return e.Code
	}
	return "unmapped: " + err.Error()
}

func fwd(tg string) elbv2api.Action {
	return elbv2api.Action{Type: ptr(elbv2api.ActionTypeEnumForward), TargetGroupArn: ptr(tg)}
}

func TestCheckActions(t *testing.T) {
	fixed := func(code string) elbv2api.Action {
		return elbv2api.Action{Type: ptr(elbv2api.ActionTypeEnumFixedResponse), FixedResponseConfig: &elbv2api.FixedResponseActionConfig{StatusCode: ptr(code)}}
	}
	cases := []struct {
		name    string
		actions []elbv2api.Action
		code    string
	}{
		{"forward", []elbv2api.Action{fwd("tg")}, ""},
		{"none", nil, "ValidationError"},
		{"two terminal actions", []elbv2api.Action{fwd("a"), fixed("200")}, "InvalidLoadBalancerAction"},
		{"fixed 503", []elbv2api.Action{fixed("503")}, ""},
		{"fixed 700", []elbv2api.Action{fixed("700")}, "ValidationError"},
		{"fixed bad content type", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumFixedResponse),
			FixedResponseConfig: &elbv2api.FixedResponseActionConfig{StatusCode: ptr("200"), ContentType: ptr("image/png")}}}, "ValidationError"},
		{"forward without group", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumForward)}}, "ValidationError"},
		{"weighted", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumForward), ForwardConfig: &elbv2api.ForwardActionConfig{
			TargetGroups: []elbv2api.TargetGroupTuple{{TargetGroupArn: ptr("a"), Weight: ptr(int32(1))}, {TargetGroupArn: ptr("b"), Weight: ptr(int32(3))}}}}}, ""},
		{"weight over 999", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumForward), ForwardConfig: &elbv2api.ForwardActionConfig{
			TargetGroups: []elbv2api.TargetGroupTuple{{TargetGroupArn: ptr("a"), Weight: ptr(int32(1000))}}}}}, "ValidationError"},
		{"same group twice", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumForward), ForwardConfig: &elbv2api.ForwardActionConfig{
			TargetGroups: []elbv2api.TargetGroupTuple{{TargetGroupArn: ptr("a")}, {TargetGroupArn: ptr("a")}}}}}, "ValidationError"},
		{"redirect", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumRedirect), RedirectConfig: &elbv2api.RedirectActionConfig{
			Protocol: ptr("HTTPS"), Port: ptr("443"), StatusCode: ptr(elbv2api.RedirectActionStatusCodeEnumHttp301)}}}, ""},
		{"redirect bad port", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumRedirect), RedirectConfig: &elbv2api.RedirectActionConfig{
			Port: ptr("0"), StatusCode: ptr(elbv2api.RedirectActionStatusCodeEnumHttp301)}}}, "ValidationError"},
		{"redirect to itself", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumRedirect), RedirectConfig: &elbv2api.RedirectActionConfig{
			StatusCode: ptr(elbv2api.RedirectActionStatusCodeEnumHttp302)}}}, "ValidationError"},
		{"oidc", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumAuthenticateOidc)}, fwd("a")}, "InvalidLoadBalancerAction"},
		{"order twice", []elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumForward), TargetGroupArn: ptr("a"), Order: ptr(int32(1))},
			{Type: ptr(elbv2api.ActionTypeEnumFixedResponse), Order: ptr(int32(1)), FixedResponseConfig: &elbv2api.FixedResponseActionConfig{StatusCode: ptr("200")}}}, "ValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkActions(c.actions)
			if got := codeOf(err); got != c.code {
				t.Fatalf("code %q, want %q (%v)", got, c.code, err)
			}
		})
	}
	// Redirect defaults are filled as AWS echoes them; Order is given.
	out, err := checkActions([]elbv2api.Action{{Type: ptr(elbv2api.ActionTypeEnumRedirect), RedirectConfig: &elbv2api.RedirectActionConfig{
		Protocol: ptr("HTTPS"), StatusCode: ptr(elbv2api.RedirectActionStatusCodeEnumHttp301)}}})
	if err != nil || *out[0].Order != 1 || *out[0].RedirectConfig.Path != "/#{path}" || *out[0].RedirectConfig.Host != "#{host}" {
		t.Fatalf("redirect defaults: %+v %v", out, err)
	}
}

func TestCheckConditions(t *testing.T) {
	cond := func(field string, vals ...string) elbv2api.RuleCondition {
		return elbv2api.RuleCondition{Field: ptr(field), Values: vals}
	}
	cases := []struct {
		name  string
		conds []elbv2api.RuleCondition
		code  string
	}{
		{"path", []elbv2api.RuleCondition{cond("path-pattern", "/api/*")}, ""},
		{"none", nil, "ValidationError"},
		{"unknown field", []elbv2api.RuleCondition{cond("cookie", "x")}, "ValidationError"},
		{"no values", []elbv2api.RuleCondition{cond("host-header")}, "ValidationError"},
		{"two path conditions", []elbv2api.RuleCondition{cond("path-pattern", "/a"), cond("path-pattern", "/b")}, "ValidationError"},
		{"six values", []elbv2api.RuleCondition{cond("path-pattern", "/a", "/b", "/c"), cond("host-header", "a", "b", "c")}, "ValidationError"},
		{"method", []elbv2api.RuleCondition{cond("http-request-method", "GET", "POST")}, ""},
		{"bad method", []elbv2api.RuleCondition{cond("http-request-method", "get")}, "ValidationError"},
		{"source ip", []elbv2api.RuleCondition{cond("source-ip", "10.0.0.0/8", "::1/128")}, ""},
		{"source ip not a CIDR", []elbv2api.RuleCondition{cond("source-ip", "10.0.0.1")}, "ValidationError"},
		{"header", []elbv2api.RuleCondition{{Field: ptr("http-header"), HttpHeaderConfig: &elbv2api.HttpHeaderConditionConfig{
			HttpHeaderName: ptr("X-Env"), Values: []string{"beta"}}}}, ""},
		{"header without name", []elbv2api.RuleCondition{{Field: ptr("http-header"), HttpHeaderConfig: &elbv2api.HttpHeaderConditionConfig{
			Values: []string{"beta"}}}}, "ValidationError"},
		{"query", []elbv2api.RuleCondition{{Field: ptr("query-string"), QueryStringConfig: &elbv2api.QueryStringConditionConfig{
			Values: []elbv2api.QueryStringKeyValuePair{{Key: ptr("v"), Value: ptr("2")}, {Value: ptr("x")}}}}}, ""},
		{"regex", []elbv2api.RuleCondition{{Field: ptr("path-pattern"), RegexValues: []string{"^/a$"}}}, "ValidationError"},
		{"too long", []elbv2api.RuleCondition{cond("path-pattern", "/"+strings.Repeat("a", 128))}, "ValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkConditions(c.conds)
			if got := codeOf(err); got != c.code {
				t.Fatalf("code %q, want %q (%v)", got, c.code, err)
			}
		})
	}
	out, _ := checkConditions([]elbv2api.RuleCondition{cond("path-pattern", "/api/*")})
	if out[0].PathPatternConfig == nil || out[0].PathPatternConfig.Values[0] != "/api/*" {
		t.Fatalf("Values not copied into the config: %+v", out[0])
	}
}

func TestCheckPriorities(t *testing.T) {
	current := map[string]int{"r1": 1, "r2": 2, "r3": 3}
	cases := []struct {
		name    string
		changes map[string]int
		code    string
	}{
		{"free priority", map[string]int{"r1": 10}, ""},
		{"swap", map[string]int{"r1": 2, "r2": 1}, ""},
		{"rotate", map[string]int{"r1": 2, "r2": 3, "r3": 1}, ""},
		{"clash with an unchanged rule", map[string]int{"r1": 3}, "PriorityInUse"},
		{"clash within the request", map[string]int{"r1": 7, "r2": 7}, "PriorityInUse"},
		{"new rule on a used priority", map[string]int{"new": 2}, "PriorityInUse"},
		{"zero", map[string]int{"r1": 0}, "ValidationError"},
		{"over 50000", map[string]int{"r1": 50001}, "ValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := codeOf(checkPriorities(current, c.changes)); got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
		})
	}
}

func TestNamesMatchersAndAttributes(t *testing.T) {
	for name, code := range map[string]string{"web": "", "web-1": "", "-web": "ValidationError", "web_1": "ValidationError",
		"internal-web": "ValidationError", strings.Repeat("a", 33): "ValidationError"} {
		if got := codeOf(checkLBName(name)); got != code {
			t.Errorf("load balancer name %q: %q, want %q", name, got, code)
		}
	}
	if codeOf(checkTGName("internal-ok")) != "" || codeOf(checkTGName("bad.name")) != "ValidationError" {
		t.Error("target group names")
	}
	for m, ok := range map[string]bool{"200": true, "200,202": true, "200-299": true, "200-499": true, "199": false, "200-500": false, "300-200": false, "x": false} {
		if (checkMatcher(m) == nil) != ok {
			t.Errorf("matcher %q: ok=%v", m, !ok)
		}
	}
	attrs := defaultAttrs(tgAttrRules)
	if attrs["deregistration_delay.timeout_seconds"] != "300" || attrs["load_balancing.algorithm.type"] != "round_robin" {
		t.Fatalf("defaults: %v", attrs)
	}
	got, err := applyAttrs("Target group", tgAttrRules, attrs, [][2]string{{"slow_start.duration_seconds", "30"}, {"stickiness.enabled", "true"}})
	if err != nil || got["slow_start.duration_seconds"] != "30" || attrs["slow_start.duration_seconds"] != "0" {
		t.Fatalf("apply: %v %v (the input must not change)", got, err)
	}
	for _, kv := range [][2]string{{"slow_start.duration_seconds", "10"}, {"stickiness.type", "app_cookie"}, {"load_balancing.algorithm.type", "random"}, {"nope", "1"}} {
		if _, err := applyAttrs("Target group", tgAttrRules, attrs, [][2]string{kv}); codeOf(err) != "ValidationError" {
			t.Errorf("%v accepted: %v", kv, err)
		}
	}
	if _, err := applyAttrs("Load balancer", lbAttrRules, defaultAttrs(lbAttrRules), [][2]string{{"access_logs.s3.enabled", "true"}}); codeOf(err) != "ValidationError" {
		t.Errorf("access logs on accepted: %v", err)
	}
}

func TestMapError(t *testing.T) {
	if c := codeOf(fail(errs.NotFound, "LoadBalancerNotFound", "x")); c != "LoadBalancerNotFound" {
		t.Fatal(c)
	}
	if c := codeOf(errs.E(errs.Invalid, "x")); c != "ValidationError" {
		t.Fatal(c)
	}
	if e := MapError(errors.New("plain")); e != nil {
		t.Fatalf("plain errors are left to the generic mapping: %v", e)
	}
}
