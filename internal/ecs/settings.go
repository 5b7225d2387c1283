package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Account settings are stored per principal; the account default (set with
// PutAccountSettingDefault) under the principal "_default".
// Key: /berth/ecs/accountsettings/<principal>/<name>.
const keySettings = "/berth/ecs/accountsettings/"

const defaultPrincipal = "_default"

// awsDefaults are the values of settings nobody has set (type aws_managed).
var awsDefaults = map[string]string{
	"serviceLongArnFormat":            "enabled",
	"taskLongArnFormat":               "enabled",
	"containerInstanceLongArnFormat":  "enabled",
	"awsvpcTrunking":                  "disabled",
	"containerInsights":               "disabled",
	"fargateFIPSMode":                 "disabled",
	"tagResourceAuthorization":        "on",
	"fargateTaskRetirementWaitPeriod": "7",
	"guardDutyActivate":               "off",
	"defaultLogDriverMode":            "blocking",
	"fargateEventWindows":             "disabled",
}

// validSettingValues lists the values each setting accepts.
var validSettingValues = map[string][]string{
	"serviceLongArnFormat":            {"enabled"},
	"taskLongArnFormat":               {"enabled"},
	"containerInstanceLongArnFormat":  {"enabled"},
	"awsvpcTrunking":                  {"enabled", "disabled"},
	"containerInsights":               {"enabled", "disabled", "enhanced"},
	"fargateFIPSMode":                 {"enabled", "disabled"},
	"tagResourceAuthorization":        {"on", "off"},
	"fargateTaskRetirementWaitPeriod": {"0", "7", "14"},
	"guardDutyActivate":               {"on", "off"},
	"defaultLogDriverMode":            {"blocking", "non-blocking"},
	"fargateEventWindows":             {"enabled", "disabled"},
}

type settingRecord struct {
	Value string `json:"value"`
}

func settingKey(principal, name string) string { return keySettings + principal + "/" + name }

func validateSetting(name, value string) error {
	valid, ok := validSettingValues[name]
	if !ok {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Unknown account setting name: %s", name)
	}
	if !slices.Contains(valid, value) {
		if strings.HasSuffix(name, "LongArnFormat") {
			return errs.R(errs.Invalid, reasonInvalidParameter, "The %s setting can only be enabled: Berth always uses the long ARN format.", name)
		}
		return errs.R(errs.Invalid, reasonInvalidParameter, "Invalid value '%s' for account setting %s. Valid values: %s.", value, name, strings.Join(valid, ", "))
	}
	return nil
}

func (s *Service) principal(ctx context.Context, given *string) (string, error) {
	p := deref(given)
	if p == "" {
		return caller(ctx), nil
	}
	a, err := arn.Parse(p)
	if err != nil || a.Service != "iam" {
		return "", errs.R(errs.Invalid, reasonInvalidParameter, "Invalid principalArn: %s", p)
	}
	return p, nil
}

func (s *Service) readSetting(ctx context.Context, principal, name string) (string, bool, error) {
	kv, err := s.st.Get(ctx, settingKey(principal, name))
	if errs.Is(err, errs.NotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var r settingRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return "", false, errs.Wrap(errs.Internal, err, "decode account setting")
	}
	return r.Value, true, nil
}

// effectiveSetting is the value that applies to principal: its own, else
// the account default, else AWS's default.
func (s *Service) effectiveSetting(ctx context.Context, principal, name string) (string, error) {
	for _, p := range []string{principal, defaultPrincipal} {
		if p == "" {
			continue
		}
		v, ok, err := s.readSetting(ctx, p, name)
		if err != nil || ok {
			return v, err
		}
	}
	return awsDefaults[name], nil
}

func (s *Service) writeSetting(ctx context.Context, principal, name, value string) error {
	b, _ := json.Marshal(settingRecord{Value: value})
	_, err := s.st.Txn(ctx, nil, store.Put(settingKey(principal, name), b))
	return err
}

// PutAccountSetting sets a setting for a principal (the caller by default).
func (s *Service) PutAccountSetting(ctx context.Context, in *ecsapi.PutAccountSettingRequest) (*ecsapi.PutAccountSettingResponse, error) {
	name, value := string(deref(in.Name)), deref(in.Value)
	if err := validateSetting(name, value); err != nil {
		return nil, err
	}
	p, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	if err := s.writeSetting(ctx, p, name, value); err != nil {
		return nil, err
	}
	return &ecsapi.PutAccountSettingResponse{Setting: &ecsapi.Setting{
		Name: in.Name, Value: ptr(value), PrincipalArn: ptr(p), Type: ptr(ecsapi.SettingTypeUser),
	}}, nil
}

// PutAccountSettingDefault sets the account-wide default of a setting.
func (s *Service) PutAccountSettingDefault(ctx context.Context, in *ecsapi.PutAccountSettingDefaultRequest) (*ecsapi.PutAccountSettingDefaultResponse, error) {
	name, value := string(deref(in.Name)), deref(in.Value)
	if err := validateSetting(name, value); err != nil {
		return nil, err
	}
	if err := s.writeSetting(ctx, defaultPrincipal, name, value); err != nil {
		return nil, err
	}
	return &ecsapi.PutAccountSettingDefaultResponse{Setting: &ecsapi.Setting{
		Name: in.Name, Value: ptr(value), PrincipalArn: ptr(s.rootARN()), Type: ptr(ecsapi.SettingTypeUser),
	}}, nil
}

func (s *Service) rootARN() string { return s.arns.Service("iam", "root") }

// DeleteAccountSetting removes a principal's own setting.
func (s *Service) DeleteAccountSetting(ctx context.Context, in *ecsapi.DeleteAccountSettingRequest) (*ecsapi.DeleteAccountSettingResponse, error) {
	name := string(deref(in.Name))
	if _, ok := validSettingValues[name]; !ok {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Unknown account setting name: %s", name)
	}
	p, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	v, ok, err := s.readSetting(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errs.R(errs.NotFound, reasonResourceNotFound, "The account setting %s is not set for %s.", name, p)
	}
	if _, err := s.st.Txn(ctx, nil, store.Delete(settingKey(p, name))); err != nil {
		return nil, err
	}
	return &ecsapi.DeleteAccountSettingResponse{Setting: &ecsapi.Setting{
		Name: in.Name, Value: ptr(v), PrincipalArn: ptr(p), Type: ptr(ecsapi.SettingTypeUser),
	}}, nil
}

// ListAccountSettings lists a principal's settings; with effectiveSettings,
// every setting's value in force for it.
func (s *Service) ListAccountSettings(ctx context.Context, in *ecsapi.ListAccountSettingsRequest) (*ecsapi.ListAccountSettingsResponse, error) {
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 10) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "maxResults must be between 1 and 10.")
	}
	p, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(awsDefaults))
	for n := range awsDefaults {
		names = append(names, n)
	}
	slices.Sort(names)
	if in.Name != nil {
		names = []string{string(*in.Name)}
	}
	var all []ecsapi.Setting
	for _, n := range names {
		var v string
		typ := ecsapi.SettingTypeUser
		own, ok, err := s.readSetting(ctx, p, n)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			v = own
		case deref(in.EffectiveSettings):
			d, ok, err := s.readSetting(ctx, defaultPrincipal, n)
			if err != nil {
				return nil, err
			}
			v = d
			if !ok {
				v, typ = awsDefaults[n], ecsapi.SettingTypeAwsManaged
			}
		default:
			continue
		}
		if in.Value != nil && *in.Value != v {
			continue
		}
		all = append(all, ecsapi.Setting{Name: ptr(ecsapi.SettingName(n)), Value: ptr(v), PrincipalArn: ptr(p), Type: ptr(typ)})
	}
	limit := 10
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	start := 0
	if deref(in.NextToken) != "" {
		after, err := startAfter(in.NextToken)
		if err != nil {
			return nil, err
		}
		start = slices.IndexFunc(all, func(st ecsapi.Setting) bool { return string(*st.Name) > after })
		if start < 0 {
			start = len(all)
		}
	}
	out := &ecsapi.ListAccountSettingsResponse{Settings: []ecsapi.Setting{}}
	end := min(start+limit, len(all))
	out.Settings = append(out.Settings, all[start:end]...)
	if end < len(all) {
		out.NextToken = ptr(encodeAfter(string(*all[end-1].Name)))
	}
	return out, nil
}
