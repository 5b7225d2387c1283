// Package cloudtrail serves the audit trail through AWS CloudTrail's
// LookupEvents operation (JSON 1.1), with its lookup attributes, time range
// and pagination. Records are written by the front door (package audit).
package cloudtrail

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/cloudtrailapi"
	"github.com/berthdev/berth/internal/audit"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
)

// Service is the CloudTrail API over an audit trail.
type Service struct {
	trail *audit.Trail
}

// New returns the CloudTrail service.
func New(trail *audit.Trail) *Service { return &Service{trail: trail} }

// API returns the service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &cloudtrailapi.Handlers{LookupEvents: s.LookupEvents}
	svc := h.Service()
	svc.ValidationCode = "InvalidParameterException"
	svc.MapError = mapError
	return svc
}

const (
	reasonAttributes = "cloudtrail.attributes"
	reasonTimeRange  = "cloudtrail.time_range"
	reasonMax        = "cloudtrail.max_results"
	reasonToken      = "cloudtrail.token"
	reasonCategory   = "cloudtrail.category"
)

func mapError(err error) *awsproto.Error {
	// CloudTrail reports MaxResults out of range with its own code, not as
	// a generic validation error.
	var ve *awsproto.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) == 1 && strings.Contains(ve.Problems[0], "'MaxResults'") {
		return &awsproto.Error{Code: "InvalidMaxResultsException", Message: "MaxResults must be between 1 and 50."}
	}
	code := map[string]string{
		reasonAttributes: "InvalidLookupAttributesException",
		reasonTimeRange:  "InvalidTimeRangeException",
		reasonMax:        "InvalidMaxResultsException",
		reasonToken:      "InvalidNextTokenException",
		reasonCategory:   "InvalidEventCategoryException",
	}[errs.ReasonOf(err)]
	if code == "" {
		return nil
	}
	return &awsproto.Error{Code: code, Message: errs.MessageOf(err)}
}

type position struct {
	After string `json:"a"`
}

// LookupEvents returns audit events newest first.
func (s *Service) LookupEvents(ctx context.Context, in *cloudtrailapi.LookupEventsRequest) (*cloudtrailapi.LookupEventsResponse, error) {
	var q audit.Query
	if len(in.LookupAttributes) > 1 {
		return nil, errs.R(errs.Invalid, reasonAttributes, "You cannot specify more than one lookup attribute.")
	}
	if len(in.LookupAttributes) == 1 {
		a := in.LookupAttributes[0]
		q.Attribute = string(*a.AttributeKey)
		q.Value = *a.AttributeValue
		if q.Value == "" {
			return nil, errs.R(errs.Invalid, reasonAttributes, "The lookup attribute value must not be empty.")
		}
	}
	if in.EventCategory != nil {
		return nil, errs.R(errs.Invalid, reasonCategory, "Berth records no Insights events; omit EventCategory.")
	}
	if in.StartTime != nil {
		q.Start = in.StartTime.Time
	}
	if in.EndTime != nil {
		q.End = in.EndTime.Time
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
		return nil, errs.R(errs.Invalid, reasonTimeRange, "Start time must be before end time.")
	}
	q.Limit = 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, errs.R(errs.Invalid, reasonMax, "MaxResults must be between 1 and 50.")
		}
		q.Limit = int(*in.MaxResults)
	}
	if in.NextToken != nil && *in.NextToken != "" {
		var p position
		if err := awsproto.DecodeToken(*in.NextToken, &p); err != nil || p.After == "" {
			return nil, errs.R(errs.Invalid, reasonToken, "Invalid NextToken.")
		}
		q.After = p.After
	}
	page, err := s.trail.Lookup(ctx, q)
	if err != nil {
		if errs.Is(err, errs.Invalid) {
			return nil, errs.R(errs.Invalid, reasonToken, "Invalid NextToken.")
		}
		return nil, err
	}
	out := &cloudtrailapi.LookupEventsResponse{Events: []cloudtrailapi.Event{}}
	for _, r := range page.Records {
		out.Events = append(out.Events, toEvent(r))
	}
	if page.Next != "" {
		out.NextToken = ptr(awsproto.EncodeToken(position{After: page.Next}))
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

func toEvent(r audit.Record) cloudtrailapi.Event {
	ev := cloudtrailapi.Event{
		EventId:         ptr(r.EventID),
		EventName:       ptr(r.Operation),
		ReadOnly:        ptr(strconv.FormatBool(r.ReadOnly)),
		EventTime:       awsproto.NewTime(r.Time),
		EventSource:     ptr(r.EventSource),
		Resources:       []cloudtrailapi.Resource{},
		CloudTrailEvent: ptr(cloudTrailEvent(r)),
	}
	if r.AccessKey != "" {
		ev.AccessKeyId = ptr(r.AccessKey)
	}
	if r.UserName != "" {
		ev.Username = ptr(r.UserName)
	}
	for _, res := range r.Resources {
		ev.Resources = append(ev.Resources, cloudtrailapi.Resource{ResourceType: ptr(res.Type), ResourceName: ptr(res.Name)})
	}
	return ev
}

// cloudTrailEvent renders the full record as CloudTrail's event JSON.
func cloudTrailEvent(r audit.Record) string {
	type userIdentity struct {
		Type        string `json:"type,omitempty"`
		PrincipalID string `json:"principalId,omitempty"`
		ARN         string `json:"arn,omitempty"`
		AccountID   string `json:"accountId,omitempty"`
		AccessKeyID string `json:"accessKeyId,omitempty"`
	}
	ev := struct {
		EventVersion       string          `json:"eventVersion"`
		UserIdentity       userIdentity    `json:"userIdentity"`
		EventTime          string          `json:"eventTime"`
		EventSource        string          `json:"eventSource"`
		EventName          string          `json:"eventName"`
		AWSRegion          string          `json:"awsRegion"`
		SourceIPAddress    string          `json:"sourceIPAddress"`
		UserAgent          string          `json:"userAgent"`
		ErrorCode          string          `json:"errorCode,omitempty"`
		ErrorMessage       string          `json:"errorMessage,omitempty"`
		RequestParameters  json.RawMessage `json:"requestParameters"`
		ResponseElements   json.RawMessage `json:"responseElements"`
		RequestID          string          `json:"requestID"`
		EventID            string          `json:"eventID"`
		ReadOnly           bool            `json:"readOnly"`
		EventType          string          `json:"eventType"`
		ManagementEvent    bool            `json:"managementEvent"`
		RecipientAccountID string          `json:"recipientAccountId,omitempty"`
		EventCategory      string          `json:"eventCategory"`
	}{
		EventVersion: "1.08",
		UserIdentity: userIdentity{Type: r.IdentityType, PrincipalID: r.Account, ARN: r.PrincipalARN,
			AccountID: r.Account, AccessKeyID: r.AccessKey},
		EventTime:          r.Time.UTC().Format(time.RFC3339),
		EventSource:        r.EventSource,
		EventName:          r.Operation,
		AWSRegion:          r.Region,
		SourceIPAddress:    r.SourceIP,
		UserAgent:          r.UserAgent,
		ErrorCode:          r.ErrorCode,
		ErrorMessage:       r.ErrorMessage,
		RequestParameters:  r.Parameters,
		ResponseElements:   json.RawMessage("null"),
		RequestID:          r.RequestID,
		EventID:            r.EventID,
		ReadOnly:           r.ReadOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: r.Account,
		EventCategory:      "Management",
	}
	if len(ev.RequestParameters) == 0 {
		ev.RequestParameters = json.RawMessage("null")
	}
	b, _ := json.Marshal(ev)
	return string(b)
}
