package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/taskdef"
)

// Task definitions are immutable revisions numbered per family. Keys:
//
//	/berth/ecs/taskdefs/<family>#<10-digit revision>  taskDefRecord
//	/berth/ecs/families/<family>                      familyRecord
//
// '#' sorts below every character a family may hold, so revisions of one
// family are contiguous and families list in name order.
const (
	keyTaskDefs = ecsstate.KeyTaskDefs
	keyFamilies = "/berth/ecs/families/"
	revSep      = ecsstate.RevSep
)

// familyRecord counts a family's revisions; revisions are never reused.
type familyRecord struct {
	Last   int32 `json:"last"`   // highest revision ever registered
	Active int32 `json:"active"` // revisions in status ACTIVE
}

func (s *Service) taskDefARN(family string, rev int32) string {
	return s.arns.ECS(fmt.Sprintf("task-definition/%s:%d", family, rev))
}

// RegisterTaskDefinition validates a task definition, fills ECS's
// defaults and stores it as the family's next revision.
func (s *Service) RegisterTaskDefinition(ctx context.Context, in *ecsapi.RegisterTaskDefinitionRequest) (*ecsapi.RegisterTaskDefinitionResponse, error) {
	family := deref(in.Family) // taskdef.Build checks it, the tags and the size
	famKey := keyFamilies + family
	for {
		var fam familyRecord
		var famRev int64
		kv, err := s.st.Get(ctx, famKey)
		switch {
		case err == nil:
			if err := json.Unmarshal(kv.Value, &fam); err != nil {
				return nil, errs.Wrap(errs.Internal, err, "decode family %s", family)
			}
			famRev = kv.ModRevision
		case errs.Is(err, errs.NotFound):
		default:
			return nil, err
		}
		rev := fam.Last + 1
		td, err := taskdef.Build(in, taskdef.Options{
			Revision:          rev,
			TaskDefinitionArn: s.taskDefARN(family, rev),
			RegisteredAt:      s.now().UTC(),
			RegisteredBy:      caller(ctx),
		})
		if err != nil {
			return nil, err
		}
		rec := taskDefRecord{TaskDefinition: *td, Tags: in.Tags}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encode task definition")
		}
		fam.Last, fam.Active = rev, fam.Active+1
		fb, _ := json.Marshal(fam)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(famKey, famRev)},
			store.Put(famKey, fb), store.Put(taskDefKey(family, rev), b))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			s.log.Info("task definition registered", "family", family, "revision", rev)
			out := &ecsapi.RegisterTaskDefinitionResponse{TaskDefinition: td}
			if len(in.Tags) > 0 {
				out.Tags = in.Tags
			}
			return out, nil
		}
	}
}

// parseTaskDefRef splits "family", "family:rev" or an ARN. rev is 0 when
// the reference names only a family.
func (s *Service) parseTaskDefRef(ref string) (family string, rev int32, err error) {
	bad := errs.R(errs.Invalid, reasonClient, "Invalid revision number. Number: %s", ref)
	if arn.IsARN(ref) {
		a, perr := arn.Parse(ref)
		if perr != nil || a.Service != "ecs" || a.ResourceType() != "task-definition" {
			return "", 0, errs.R(errs.Invalid, reasonClient, "Invalid task definition ARN: %s", ref)
		}
		ref = a.ResourceID()
		if !strings.Contains(ref, ":") {
			return "", 0, errs.R(errs.Invalid, reasonClient, "Task definition ARNs must include a revision: %s", ref)
		}
	}
	family, r, hasRev := strings.Cut(ref, ":")
	if family == "" {
		return "", 0, errs.R(errs.Invalid, reasonClient, "Task definition family can not be blank.")
	}
	if !hasRev {
		return family, 0, nil
	}
	n, perr := strconv.ParseInt(r, 10, 32)
	if perr != nil || n < 1 {
		return "", 0, bad
	}
	return family, int32(n), nil
}

// findTaskDef reads a task definition by reference: a family alone means
// its latest ACTIVE revision.
func (s *Service) findTaskDef(ctx context.Context, ref string) (taskDefRecord, int64, error) {
	family, rev, err := s.parseTaskDefRef(ref)
	if err != nil {
		return taskDefRecord{}, 0, err
	}
	notFound := errs.R(errs.NotFound, reasonClient, "Unable to describe task definition.")
	if rev > 0 {
		kv, err := s.st.Get(ctx, taskDefKey(family, rev))
		if errs.Is(err, errs.NotFound) {
			return taskDefRecord{}, 0, notFound
		}
		if err != nil {
			return taskDefRecord{}, 0, err
		}
		var rec taskDefRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return rec, 0, errs.Wrap(errs.Internal, err, "decode task definition")
		}
		return rec, kv.ModRevision, nil
	}
	prefix := keyTaskDefs + family + revSep
	from := ""
	for {
		res, err := s.st.List(ctx, prefix, store.ListOptions{Descend: true, Limit: 100, StartAfter: from})
		if err != nil {
			return taskDefRecord{}, 0, err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			var rec taskDefRecord
			if json.Unmarshal(kv.Value, &rec) == nil && deref(rec.TaskDefinition.Status) == ecsapi.TaskDefinitionStatusActive {
				return rec, kv.ModRevision, nil
			}
		}
		if !res.More {
			return taskDefRecord{}, 0, notFound
		}
	}
}

// DescribeTaskDefinition describes a task definition revision.
func (s *Service) DescribeTaskDefinition(ctx context.Context, in *ecsapi.DescribeTaskDefinitionRequest) (*ecsapi.DescribeTaskDefinitionResponse, error) {
	rec, _, err := s.findTaskDef(ctx, deref(in.TaskDefinition))
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition}
	for _, f := range in.Include {
		if f == ecsapi.TaskDefinitionFieldTags {
			out.Tags = rec.Tags
			if out.Tags == nil {
				out.Tags = []ecsapi.Tag{}
			}
		}
	}
	return out, nil
}

// changeTaskDef applies change to one revision with optimistic concurrency,
// adjusting the family's ACTIVE count by the status change.
func (s *Service) changeTaskDef(ctx context.Context, ref string, change func(*taskDefRecord) error) (taskDefRecord, error) {
	family, rev, err := s.parseTaskDefRef(ref)
	if err != nil {
		return taskDefRecord{}, err
	}
	if rev == 0 {
		return taskDefRecord{}, errs.R(errs.Invalid, reasonClient, "Invalid revision number. Number: %s", ref)
	}
	key, famKey := taskDefKey(family, rev), keyFamilies+family
	for {
		rec, tdRev, err := s.findTaskDef(ctx, ref)
		if err != nil {
			if errs.Is(err, errs.NotFound) {
				return rec, errs.R(errs.NotFound, reasonClient, "The specified task definition does not exist.")
			}
			return rec, err
		}
		kv, err := s.st.Get(ctx, famKey)
		if err != nil {
			return rec, err
		}
		var fam familyRecord
		if err := json.Unmarshal(kv.Value, &fam); err != nil {
			return rec, errs.Wrap(errs.Internal, err, "decode family")
		}
		wasActive := deref(rec.TaskDefinition.Status) == ecsapi.TaskDefinitionStatusActive
		if err := change(&rec); err != nil {
			return rec, err
		}
		isActive := deref(rec.TaskDefinition.Status) == ecsapi.TaskDefinitionStatusActive
		switch {
		case wasActive && !isActive:
			fam.Active--
		case !wasActive && isActive:
			fam.Active++
		}
		b, _ := json.Marshal(rec)
		fb, _ := json.Marshal(fam)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, tdRev), store.ModRevisionIs(famKey, kv.ModRevision)},
			store.Put(key, b), store.Put(famKey, fb))
		if err != nil {
			return rec, err
		}
		if res.Succeeded {
			return rec, nil
		}
	}
}

// DeregisterTaskDefinition marks a revision INACTIVE: no new tasks or
// services may use it; existing ones keep running.
func (s *Service) DeregisterTaskDefinition(ctx context.Context, in *ecsapi.DeregisterTaskDefinitionRequest) (*ecsapi.DeregisterTaskDefinitionResponse, error) {
	now := s.now().UTC()
	rec, err := s.changeTaskDef(ctx, deref(in.TaskDefinition), func(r *taskDefRecord) error {
		if deref(r.TaskDefinition.Status) == ecsapi.TaskDefinitionStatusActive {
			r.TaskDefinition.Status = ptr(ecsapi.TaskDefinitionStatusInactive)
			r.TaskDefinition.DeregisteredAt = awsproto.NewTime(now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeregisterTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition}, nil
}

// DeleteTaskDefinitions moves INACTIVE revisions to DELETE_IN_PROGRESS.
// Per-revision problems come back as failures, as on ECS, with ECS's
// reasons and the reference as given in the failure's arn.
func (s *Service) DeleteTaskDefinitions(ctx context.Context, in *ecsapi.DeleteTaskDefinitionsRequest) (*ecsapi.DeleteTaskDefinitionsResponse, error) {
	if len(in.TaskDefinitions) == 0 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "size of TaskDefinition references list must be greater than 0")
	}
	if len(in.TaskDefinitions) > 10 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Size of TaskDefinition references list cannot exceed 10")
	}
	out := &ecsapi.DeleteTaskDefinitionsResponse{TaskDefinitions: []ecsapi.TaskDefinition{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.TaskDefinitions {
		reason := ""
		if _, rev, err := s.parseTaskDefRef(ref); err != nil || rev == 0 {
			reason = reasonTaskDefInvalid
		} else {
			rec, err := s.changeTaskDef(ctx, ref, func(r *taskDefRecord) error {
				switch deref(r.TaskDefinition.Status) {
				case ecsapi.TaskDefinitionStatusActive:
					return errs.R(errs.Conflict, reasonClient, reasonTaskDefStillActive)
				case ecsapi.TaskDefinitionStatusInactive:
					r.TaskDefinition.Status = ptr(ecsapi.TaskDefinitionStatusDeleteInProgress)
				}
				return nil
			})
			switch {
			case err == nil:
				out.TaskDefinitions = append(out.TaskDefinitions, rec.TaskDefinition)
				continue
			case errs.KindOf(err) == errs.Unavailable || errs.KindOf(err) == errs.Internal:
				return nil, err
			case errs.Is(err, errs.NotFound):
				reason = reasonTaskDefMissing
			default:
				reason = errs.MessageOf(err)
			}
		}
		out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(ref), Reason: ptr(reason)})
	}
	return out, nil
}

// DeleteTaskDefinitions' failure reasons, in ECS's words.
const (
	reasonTaskDefInvalid     = "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."
	reasonTaskDefMissing     = "The specified task definition does not exist. Specify a valid account, family, revision and try again."
	reasonTaskDefStillActive = "The specified task definition is still in ACTIVE status. Please deregister the target and try again."
)

// ListTaskDefinitions lists revision ARNs, by family then revision.
func (s *Service) ListTaskDefinitions(ctx context.Context, in *ecsapi.ListTaskDefinitionsRequest) (*ecsapi.ListTaskDefinitionsResponse, error) {
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	status := ecsapi.TaskDefinitionStatusActive
	if in.Status != nil {
		status = *in.Status
	}
	prefix := keyTaskDefs
	if f := deref(in.FamilyPrefix); f != "" {
		prefix = keyTaskDefs + f + revSep
	}
	desc := in.Sort != nil && *in.Sort == ecsapi.SortOrderDesc
	out := &ecsapi.ListTaskDefinitionsResponse{TaskDefinitionArns: []string{}}
	var rec taskDefRecord
	out.NextToken, err = s.paginate(ctx, prefix, after, limit, desc,
		func(kv store.KV) bool {
			rec = taskDefRecord{}
			return json.Unmarshal(kv.Value, &rec) == nil && deref(rec.TaskDefinition.Status) == status
		},
		func(store.KV) {
			out.TaskDefinitionArns = append(out.TaskDefinitionArns, deref(rec.TaskDefinition.TaskDefinitionArn))
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListTaskDefinitionFamilies lists family names.
func (s *Service) ListTaskDefinitionFamilies(ctx context.Context, in *ecsapi.ListTaskDefinitionFamiliesRequest) (*ecsapi.ListTaskDefinitionFamiliesResponse, error) {
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	status := ecsapi.TaskDefinitionFamilyStatusActive
	if in.Status != nil {
		status = *in.Status
	}
	prefix := keyFamilies + deref(in.FamilyPrefix)
	out := &ecsapi.ListTaskDefinitionFamiliesResponse{Families: []string{}}
	var fam familyRecord
	out.NextToken, err = s.paginate(ctx, prefix, after, limit, false,
		func(kv store.KV) bool {
			fam = familyRecord{}
			if json.Unmarshal(kv.Value, &fam) != nil {
				return false
			}
			switch status {
			case ecsapi.TaskDefinitionFamilyStatusActive:
				return fam.Active > 0
			case ecsapi.TaskDefinitionFamilyStatusInactive:
				return fam.Active == 0
			}
			return true
		},
		func(kv store.KV) {
			out.Families = append(out.Families, strings.TrimPrefix(kv.Key, keyFamilies))
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type taskDefTagger struct{ s *Service }

func (t taskDefTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	rec, _, err := t.s.findTaskDef(ctx, a.String())
	if errs.Is(err, errs.NotFound) {
		return nil, errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return rec.Tags, err
}

func (t taskDefTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	_, err := t.s.changeTaskDef(ctx, a.String(), func(r *taskDefRecord) error {
		r.Tags = change(r.Tags)
		return validateTags(r.Tags)
	})
	if errs.Is(err, errs.NotFound) {
		return errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return err
}
