package ecs

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Tags of tasks and container instances live in their records; the
// taggers below change them with compare-on-revision like every writer.

// updateRecord reads key into v, applies change, and writes it back if
// the key is unchanged meanwhile (retrying otherwise).
func (s *Service) updateRecord(ctx context.Context, key string, v any, change func() error) error {
	for {
		kv, err := s.st.Get(ctx, key)
		if errs.Is(err, errs.NotFound) {
			return errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return errs.Wrap(errs.Internal, err, "decode %s", key)
		}
		if err := change(); err != nil {
			return err
		}
		b, _ := json.Marshal(v)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, kv.ModRevision)}, store.Put(key, b))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}

// recordKeyOf maps "task/<cluster>/<id>" or "container-instance/<cluster>/<id>"
// to its store key.
func recordKeyOf(a arn.ARN, prefix string) (string, error) {
	cluster, id, ok := strings.Cut(a.ResourceID(), "/")
	if !ok || cluster == "" || id == "" {
		return "", errs.R(errs.Invalid, reasonInvalidParameter, "Invalid resourceArn: %s", a)
	}
	return prefix + cluster + "/" + id, nil
}

type taskTagger struct{ s *Service }

func (t taskTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	key, err := recordKeyOf(a, keyTasks)
	if err != nil {
		return nil, err
	}
	var rec taskRecord
	err = t.s.updateRecord(ctx, key, &rec, func() error { return errNoChange })
	if err == errNoChange {
		err = nil
	}
	return rec.Tags, err
}

func (t taskTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	key, err := recordKeyOf(a, keyTasks)
	if err != nil {
		return err
	}
	var rec taskRecord
	return t.s.updateRecord(ctx, key, &rec, func() error {
		rec.Tags = change(rec.Tags)
		rec.Version++
		return validateTags(rec.Tags)
	})
}

type instanceTagger struct{ s *Service }

func (t instanceTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	key, err := recordKeyOf(a, keyInstances)
	if err != nil {
		return nil, err
	}
	var rec instanceRecord
	err = t.s.updateRecord(ctx, key, &rec, func() error { return errNoChange })
	if err == errNoChange {
		err = nil
	}
	return rec.Tags, err
}

func (t instanceTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	key, err := recordKeyOf(a, keyInstances)
	if err != nil {
		return err
	}
	var rec instanceRecord
	return t.s.updateRecord(ctx, key, &rec, func() error {
		rec.Tags = change(rec.Tags)
		rec.Version++
		return validateTags(rec.Tags)
	})
}

// errNoChange stops updateRecord after the read (a read-only use).
var errNoChange = errs.E(errs.Other, "no change")
