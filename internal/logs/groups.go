package logs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/logstore"
)

// retentionDays are the values PutRetentionPolicy accepts.
var retentionDays = []int32{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

const describeLimit = 50

// CreateLogGroup creates a log group.
func (s *Service) CreateLogGroup(ctx context.Context, in *logsapi.CreateLogGroupRequest) (*logsapi.CreateLogGroupResponse, error) {
	class := deref(in.LogGroupClass)
	if class == "" {
		class = logsapi.LogGroupClassStandard
	}
	if err := checkTagKeys(in.Tags); err != nil {
		return nil, err
	}
	err := s.st.CreateGroup(logstore.GroupInfo{
		Name:               deref(in.LogGroupName),
		Created:            s.nowMs(),
		Class:              string(class),
		KMSKey:             deref(in.KmsKeyId),
		DeletionProtection: deref(in.DeletionProtectionEnabled),
		Tags:               in.Tags,
	})
	return done(&logsapi.CreateLogGroupResponse{}, err)
}

func checkTagKeys(tags map[string]string) error {
	if len(tags) > logstore.MaxTags {
		return errs.R(errs.LimitExceeded, logstore.ReasonTooManyTags, "A resource can have no more than %d tags.", logstore.MaxTags)
	}
	for k := range tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errs.E(errs.Invalid, "Tag keys prefixed with 'aws:' are reserved.")
		}
	}
	return nil
}

// DeleteLogGroup deletes a log group with its streams and events.
func (s *Service) DeleteLogGroup(ctx context.Context, in *logsapi.DeleteLogGroupRequest) (*logsapi.DeleteLogGroupResponse, error) {
	name := deref(in.LogGroupName)
	g, err := s.st.Group(name)
	if err != nil {
		return nil, err
	}
	if g.DeletionProtection {
		return nil, errs.R(errs.Conflict, reasonInvalidOperation, "Log group %s has deletion protection enabled.", name)
	}
	return done(&logsapi.DeleteLogGroupResponse{}, s.st.DeleteGroup(name))
}

// DescribeLogGroups lists log groups by name, 50 at most per page.
func (s *Service) DescribeLogGroups(ctx context.Context, in *logsapi.DescribeLogGroupsRequest) (*logsapi.DescribeLogGroupsResponse, error) {
	if in.LogGroupNamePrefix != nil && in.LogGroupNamePattern != nil {
		return nil, errs.E(errs.Invalid, "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	if len(in.LogGroupIdentifiers) > 0 && (in.LogGroupNamePrefix != nil || in.LogGroupNamePattern != nil) {
		return nil, errs.E(errs.Invalid, "logGroupIdentifiers and logGroupNamePrefix/logGroupNamePattern are mutually exclusive parameters.")
	}
	limit := int(deref(in.Limit))
	if limit == 0 {
		limit = describeLimit
	}
	var after string
	if in.NextToken != nil {
		if err := awsproto.DecodeToken(*in.NextToken, &after); err != nil {
			return nil, errs.E(errs.Invalid, "The specified nextToken is invalid.")
		}
	}
	idents := map[string]bool{}
	for _, id := range in.LogGroupIdentifiers {
		name := id
		if strings.HasPrefix(id, "arn:") {
			n, err := s.groupFromARN(id)
			if err != nil {
				continue
			}
			name = n
		}
		idents[name] = true
	}
	prefix := deref(in.LogGroupNamePrefix)
	pattern := strings.ToLower(deref(in.LogGroupNamePattern))
	out := &logsapi.DescribeLogGroupsResponse{LogGroups: []logsapi.LogGroup{}}
	for _, g := range s.st.Groups() {
		switch {
		case g.Name <= after && after != "":
			continue
		case !strings.HasPrefix(g.Name, prefix):
			continue
		case pattern != "" && !strings.Contains(strings.ToLower(g.Name), pattern):
			continue
		case len(idents) > 0 && !idents[g.Name]:
			continue
		case in.LogGroupClass != nil && g.Class != string(*in.LogGroupClass):
			continue
		}
		if len(out.LogGroups) == limit {
			out.NextToken = ptr(awsproto.EncodeToken(out.LogGroups[limit-1].LogGroupName))
			break
		}
		out.LogGroups = append(out.LogGroups, s.wireGroup(g))
	}
	return out, nil
}

func (s *Service) wireGroup(g logstore.Group) logsapi.LogGroup {
	class := logsapi.LogGroupClass(g.Class)
	out := logsapi.LogGroup{
		Arn:               ptr(s.groupARN(g.Name) + ":*"),
		LogGroupArn:       ptr(s.groupARN(g.Name)),
		LogGroupName:      ptr(g.Name),
		CreationTime:      ptr(g.Created),
		MetricFilterCount: ptr(int32(0)),
		StoredBytes:       ptr(g.StoredBytes),
		LogGroupClass:     &class,
	}
	if g.RetentionDays > 0 {
		out.RetentionInDays = ptr(g.RetentionDays)
	}
	if g.KMSKey != "" {
		out.KmsKeyId = ptr(g.KMSKey)
	}
	if g.DeletionProtection {
		out.DeletionProtectionEnabled = ptr(true)
	}
	return out
}

// CreateLogStream creates a log stream.
func (s *Service) CreateLogStream(ctx context.Context, in *logsapi.CreateLogStreamRequest) (*logsapi.CreateLogStreamResponse, error) {
	return done(&logsapi.CreateLogStreamResponse{}, s.st.CreateStream(deref(in.LogGroupName), deref(in.LogStreamName), s.nowMs()))
}

// DeleteLogStream deletes a log stream and its events.
func (s *Service) DeleteLogStream(ctx context.Context, in *logsapi.DeleteLogStreamRequest) (*logsapi.DeleteLogStreamResponse, error) {
	return done(&logsapi.DeleteLogStreamResponse{}, s.st.DeleteStream(deref(in.LogGroupName), deref(in.LogStreamName)))
}

// streamPos is DescribeLogStreams' paging position: the last stream
// returned, in the requested order.
type streamPos struct {
	Name string `json:"n"`
	Last int64  `json:"t,omitempty"`
}

// DescribeLogStreams lists a group's streams by name or by last event
// time, 50 at most per page.
func (s *Service) DescribeLogStreams(ctx context.Context, in *logsapi.DescribeLogStreamsRequest) (*logsapi.DescribeLogStreamsResponse, error) {
	group, err := s.groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	byTime := deref(in.OrderBy) == logsapi.OrderByLastEventTime
	if byTime && in.LogStreamNamePrefix != nil {
		return nil, errs.E(errs.Invalid, "Cannot order by LastEventTime with a logStreamNamePrefix.")
	}
	desc := deref(in.Descending)
	limit := int(deref(in.Limit))
	if limit == 0 {
		limit = describeLimit
	}
	var pos *streamPos
	if in.NextToken != nil {
		pos = &streamPos{}
		if err := awsproto.DecodeToken(*in.NextToken, pos); err != nil {
			return nil, errs.E(errs.Invalid, "The specified nextToken is invalid.")
		}
	}
	streams, err := s.st.Streams(group)
	if err != nil {
		return nil, err
	}
	key := func(st logstore.Stream) streamPos {
		if byTime {
			return streamPos{Name: st.Name, Last: st.LastEvent}
		}
		return streamPos{Name: st.Name}
	}
	order := func(a, b streamPos) int {
		c := cmp.Compare(a.Last, b.Last)
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if desc {
			c = -c
		}
		return c
	}
	slices.SortFunc(streams, func(a, b logstore.Stream) int { return order(key(a), key(b)) })
	out := &logsapi.DescribeLogStreamsResponse{LogStreams: []logsapi.LogStream{}}
	prefix := deref(in.LogStreamNamePrefix)
	var last streamPos
	for _, st := range streams {
		if pos != nil && order(key(st), *pos) <= 0 {
			continue
		}
		if !strings.HasPrefix(st.Name, prefix) {
			continue
		}
		if len(out.LogStreams) == limit {
			out.NextToken = ptr(awsproto.EncodeToken(last))
			break
		}
		out.LogStreams = append(out.LogStreams, s.wireStream(group, st))
		last = key(st)
	}
	return out, nil
}

func (s *Service) wireStream(group string, st logstore.Stream) logsapi.LogStream {
	out := logsapi.LogStream{
		Arn:           ptr(s.streamARN(group, st.Name)),
		LogStreamName: ptr(st.Name),
		CreationTime:  ptr(st.Created),
		// AWS stopped reporting stored bytes per stream in 2019: always 0.
		StoredBytes: ptr(int64(0)),
	}
	if st.HasEvents {
		out.FirstEventTimestamp = ptr(st.FirstEvent)
		out.LastEventTimestamp = ptr(st.LastEvent)
		out.LastIngestionTime = ptr(st.LastIngestion)
	}
	return out
}

// PutRetentionPolicy sets a group's retention to one of AWS's values.
func (s *Service) PutRetentionPolicy(ctx context.Context, in *logsapi.PutRetentionPolicyRequest) (*logsapi.PutRetentionPolicyResponse, error) {
	days := deref(in.RetentionInDays)
	if !slices.Contains(retentionDays, days) {
		vals := make([]string, len(retentionDays))
		for i, d := range retentionDays {
			vals[i] = fmt.Sprint(d)
		}
		return nil, errs.E(errs.Invalid, "1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [%s]", days, strings.Join(vals, ", "))
	}
	return done(&logsapi.PutRetentionPolicyResponse{}, s.st.SetRetention(deref(in.LogGroupName), days))
}

// DeleteRetentionPolicy makes a group's events never expire.
func (s *Service) DeleteRetentionPolicy(ctx context.Context, in *logsapi.DeleteRetentionPolicyRequest) (*logsapi.DeleteRetentionPolicyResponse, error) {
	return done(&logsapi.DeleteRetentionPolicyResponse{}, s.st.SetRetention(deref(in.LogGroupName), 0))
}

// TagResource tags a log group named by its ARN.
func (s *Service) TagResource(ctx context.Context, in *logsapi.TagResourceRequest) (*logsapi.TagResourceResponse, error) {
	name, err := s.groupFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	if err := checkTagKeys(in.Tags); err != nil {
		return nil, err
	}
	return done(&logsapi.TagResourceResponse{}, s.st.UpdateTags(name, in.Tags, nil))
}

// UntagResource removes tags from a log group named by its ARN.
func (s *Service) UntagResource(ctx context.Context, in *logsapi.UntagResourceRequest) (*logsapi.UntagResourceResponse, error) {
	name, err := s.groupFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	return done(&logsapi.UntagResourceResponse{}, s.st.UpdateTags(name, nil, in.TagKeys))
}

// ListTagsForResource lists a log group's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *logsapi.ListTagsForResourceRequest) (*logsapi.ListTagsForResourceResponse, error) {
	name, err := s.groupFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	g, err := s.st.Group(name)
	if err != nil {
		return nil, err
	}
	return &logsapi.ListTagsForResourceResponse{Tags: nonNil(g.Tags)}, nil
}

// TagLogGroup is the older form of TagResource, by group name.
func (s *Service) TagLogGroup(ctx context.Context, in *logsapi.TagLogGroupRequest) (*logsapi.TagLogGroupResponse, error) {
	if err := checkTagKeys(in.Tags); err != nil {
		return nil, err
	}
	return done(&logsapi.TagLogGroupResponse{}, s.st.UpdateTags(deref(in.LogGroupName), in.Tags, nil))
}

// UntagLogGroup is the older form of UntagResource, by group name.
func (s *Service) UntagLogGroup(ctx context.Context, in *logsapi.UntagLogGroupRequest) (*logsapi.UntagLogGroupResponse, error) {
	return done(&logsapi.UntagLogGroupResponse{}, s.st.UpdateTags(deref(in.LogGroupName), nil, in.Tags))
}

// ListTagsLogGroup is the older form of ListTagsForResource.
func (s *Service) ListTagsLogGroup(ctx context.Context, in *logsapi.ListTagsLogGroupRequest) (*logsapi.ListTagsLogGroupResponse, error) {
	g, err := s.st.Group(deref(in.LogGroupName))
	if err != nil {
		return nil, err
	}
	return &logsapi.ListTagsLogGroupResponse{Tags: nonNil(g.Tags)}, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
