package cloudmap

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Reasons of the domain errors that map to distinct Cloud Map codes.
const (
	ReasonNamespaceNotFound   = "cloudmap.namespace_not_found"
	ReasonServiceNotFound     = "cloudmap.service_not_found"
	ReasonInstanceNotFound    = "cloudmap.instance_not_found"
	ReasonOperationNotFound   = "cloudmap.operation_not_found"
	ReasonResourceNotFound    = "cloudmap.resource_not_found"
	ReasonNamespaceExists     = "cloudmap.namespace_exists"
	ReasonServiceExists       = "cloudmap.service_exists"
	ReasonInUse               = "cloudmap.resource_in_use"
	ReasonDuplicateRequest    = "cloudmap.duplicate_request"
	ReasonCustomHealthMissing = "cloudmap.custom_health_not_found"
	ReasonTooManyTags         = "cloudmap.too_many_tags"
)

// Registry is Cloud Map's state in the store: namespaces, services,
// instances and operations. Every change is one transaction that also
// records its operation, so an acknowledged change is durable and its
// operation says SUCCESS.
type Registry struct {
	st  store.Store
	now func() time.Time
}

// NewRegistry returns a registry over st.
func NewRegistry(st store.Store) *Registry { return &Registry{st: st, now: time.Now} }

func getJSON(ctx context.Context, st store.Store, key string, v any) (int64, error) {
	kv, err := st.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, errs.Wrap(errs.Internal, err, "decode %s", key)
	}
	return kv.ModRevision, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func listJSON[T any](ctx context.Context, st store.Store, prefix string) ([]T, int64, error) {
	res, err := st.List(ctx, prefix, store.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, len(res.KVs))
	for _, kv := range res.KVs {
		var v T
		if json.Unmarshal(kv.Value, &v) == nil {
			out = append(out, v)
		}
	}
	return out, res.Revision, nil
}

// conflictRetries bounds the optimistic retries of a change whose
// compare failed because something else changed meanwhile.
const conflictRetries = 5

func errConcurrent() error {
	return errs.R(errs.Conflict, ReasonDuplicateRequest, "Another operation is in progress on this resource; retry.")
}

func (r *Registry) newOp(typ string, targets map[string]string) Operation {
	now := r.now().UTC()
	return Operation{ID: newOperationID(), Type: typ, Status: "SUCCESS", Targets: targets, Created: now, Updated: now}
}

// checkRequest looks up a CreatorRequestId: a retry of the same request
// (same kind and name) gets what it made the first time; the same id on
// another request is DuplicateRequest.
func (r *Registry) checkRequest(ctx context.Context, reqID, kind, name string) (*request, error) {
	if reqID == "" {
		return nil, nil
	}
	var q request
	if _, err := getJSON(ctx, r.st, keyRequests+reqID, &q); err != nil {
		if errs.Is(err, errs.NotFound) {
			return nil, nil
		}
		return nil, err
	}
	if q.Kind == kind && q.Name == name {
		return &q, nil
	}
	return nil, errs.R(errs.Conflict, ReasonDuplicateRequest, "The operation with CreatorRequestId %s is already in progress or was already done for another resource.", reqID)
}

// --- namespaces ---

// CreateNamespace stores ns (its ID, ARN and Created are set by the
// caller) and returns the CREATE_NAMESPACE operation's id.
func (r *Registry) CreateNamespace(ctx context.Context, ns Namespace) (string, error) {
	if q, err := r.checkRequest(ctx, ns.CreatorRequestID, "namespace", ns.Name); err != nil || q != nil {
		if q != nil {
			return q.OperationID, nil
		}
		return "", err
	}
	nameKey := keyNSNames + dnsName(ns.Name)
	op := r.newOp("CREATE_NAMESPACE", map[string]string{"NAMESPACE": ns.ID})
	ops := []store.Op{store.Put(keyNamespaces+ns.ID, mustJSON(ns)), store.Put(nameKey, []byte(ns.ID)), store.Put(keyOperations+op.ID, mustJSON(op))}
	cmps := []store.Cmp{store.Absent(nameKey)}
	if ns.CreatorRequestID != "" {
		ops = append(ops, store.Put(keyRequests+ns.CreatorRequestID, mustJSON(request{Kind: "namespace", Name: ns.Name, ResourceID: ns.ID, OperationID: op.ID})))
		cmps = append(cmps, store.Absent(keyRequests+ns.CreatorRequestID))
	}
	res, err := r.st.Txn(ctx, cmps, ops...)
	if err != nil {
		return "", err
	}
	if !res.Succeeded {
		if q, err := r.checkRequest(ctx, ns.CreatorRequestID, "namespace", ns.Name); err != nil || q != nil {
			if q != nil {
				return q.OperationID, nil
			}
			return "", err
		}
		return "", errs.R(errs.AlreadyExists, ReasonNamespaceExists, "Namespace with name %s already exists.", ns.Name)
	}
	return op.ID, nil
}

func errNamespaceNotFound(id string) error {
	return errs.R(errs.NotFound, ReasonNamespaceNotFound, "No namespace exists with ID: %s", id)
}

// Namespace reads a namespace by id.
func (r *Registry) Namespace(ctx context.Context, id string) (Namespace, int64, error) {
	var ns Namespace
	rev, err := getJSON(ctx, r.st, keyNamespaces+id, &ns)
	if errs.Is(err, errs.NotFound) {
		return ns, 0, errNamespaceNotFound(id)
	}
	return ns, rev, err
}

// NamespaceByName reads a namespace by name (case-insensitively).
func (r *Registry) NamespaceByName(ctx context.Context, name string) (Namespace, error) {
	kv, err := r.st.Get(ctx, keyNSNames+dnsName(name))
	if errs.Is(err, errs.NotFound) {
		return Namespace{}, errs.R(errs.NotFound, ReasonNamespaceNotFound, "No namespace exists with name: %s", name)
	}
	if err != nil {
		return Namespace{}, err
	}
	ns, _, err := r.Namespace(ctx, string(kv.Value))
	return ns, err
}

// Namespaces lists every namespace, by id.
func (r *Registry) Namespaces(ctx context.Context) ([]Namespace, error) {
	out, _, err := listJSON[Namespace](ctx, r.st, keyNamespaces)
	return out, err
}

// UpdateNamespace applies change to a namespace and records an
// UPDATE_NAMESPACE operation.
func (r *Registry) UpdateNamespace(ctx context.Context, id string, change func(*Namespace) error) (string, error) {
	for range conflictRetries {
		ns, rev, err := r.Namespace(ctx, id)
		if err != nil {
			return "", err
		}
		if err := change(&ns); err != nil {
			return "", err
		}
		op := r.newOp("UPDATE_NAMESPACE", map[string]string{"NAMESPACE": id})
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyNamespaces+id, rev)},
			store.Put(keyNamespaces+id, mustJSON(ns)), store.Put(keyOperations+op.ID, mustJSON(op)))
		if err != nil {
			return "", err
		}
		if res.Succeeded {
			return op.ID, nil
		}
	}
	return "", errConcurrent()
}

// DeleteNamespace deletes a namespace that has no services left.
func (r *Registry) DeleteNamespace(ctx context.Context, id string) (string, error) {
	for range conflictRetries {
		ns, rev, err := r.Namespace(ctx, id)
		if err != nil {
			return "", err
		}
		svcs, err := r.st.List(ctx, keySvcNames+id+"/", store.ListOptions{KeysOnly: true, Limit: 1})
		if err != nil {
			return "", err
		}
		if len(svcs.KVs) > 0 {
			return "", errs.R(errs.Conflict, ReasonInUse, "Namespace %s has associated services and cannot be deleted; delete its services first.", id)
		}
		op := r.newOp("DELETE_NAMESPACE", map[string]string{"NAMESPACE": id})
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyNamespaces+id, rev), store.PrefixUnchangedSince(keySvcNames+id+"/", svcs.Revision)},
			store.Delete(keyNamespaces+id), store.Delete(keyNSNames+dnsName(ns.Name)), store.Put(keyOperations+op.ID, mustJSON(op)))
		if err != nil {
			return "", err
		}
		if res.Succeeded {
			return op.ID, nil
		}
	}
	return "", errConcurrent()
}

// --- services ---

func errServiceNotFound(id string) error {
	return errs.R(errs.NotFound, ReasonServiceNotFound, "No service exists with ID: %s", id)
}

// CreateService stores svc in its namespace, which must exist.
func (r *Registry) CreateService(ctx context.Context, svc Service) (Service, error) {
	if q, err := r.checkRequest(ctx, svc.CreatorRequestID, "service", svc.NamespaceID+"/"+svc.Name); err != nil || q != nil {
		if q != nil {
			s, _, err := r.Service(ctx, q.ResourceID)
			return s, err
		}
		return Service{}, err
	}
	for range conflictRetries {
		_, nsRev, err := r.Namespace(ctx, svc.NamespaceID)
		if err != nil {
			return Service{}, err
		}
		nameKey := keySvcNames + svc.NamespaceID + "/" + dnsName(svc.Name)
		if kv, err := r.st.Get(ctx, nameKey); err == nil {
			return Service{}, errs.R(errs.AlreadyExists, ReasonServiceExists, "Service with name %s already exists in namespace %s (service %s).", svc.Name, svc.NamespaceID, kv.Value)
		}
		ops := []store.Op{store.Put(keyServices+svc.ID, mustJSON(svc)), store.Put(nameKey, []byte(svc.ID))}
		cmps := []store.Cmp{store.ModRevisionIs(keyNamespaces+svc.NamespaceID, nsRev), store.Absent(nameKey)}
		if svc.CreatorRequestID != "" {
			ops = append(ops, store.Put(keyRequests+svc.CreatorRequestID, mustJSON(request{Kind: "service", Name: svc.NamespaceID + "/" + svc.Name, ResourceID: svc.ID})))
			cmps = append(cmps, store.Absent(keyRequests+svc.CreatorRequestID))
		}
		res, err := r.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return Service{}, err
		}
		if res.Succeeded {
			return svc, nil
		}
	}
	return Service{}, errConcurrent()
}

// Service reads a service by id.
func (r *Registry) Service(ctx context.Context, id string) (Service, int64, error) {
	var s Service
	rev, err := getJSON(ctx, r.st, keyServices+id, &s)
	if errs.Is(err, errs.NotFound) {
		return s, 0, errServiceNotFound(id)
	}
	return s, rev, err
}

// ServiceByName reads a service of a namespace by name.
func (r *Registry) ServiceByName(ctx context.Context, nsID, name string) (Service, error) {
	kv, err := r.st.Get(ctx, keySvcNames+nsID+"/"+dnsName(name))
	if errs.Is(err, errs.NotFound) {
		return Service{}, errs.R(errs.NotFound, ReasonServiceNotFound, "No service exists with name: %s", name)
	}
	if err != nil {
		return Service{}, err
	}
	s, _, err := r.Service(ctx, string(kv.Value))
	return s, err
}

// Services lists every service, by id.
func (r *Registry) Services(ctx context.Context) ([]Service, error) {
	out, _, err := listJSON[Service](ctx, r.st, keyServices)
	return out, err
}

// UpdateService applies change to a service. withOp records an
// UPDATE_SERVICE operation (UpdateService answers one; attribute and tag
// changes do not).
func (r *Registry) UpdateService(ctx context.Context, id string, withOp bool, change func(*Service) error) (string, error) {
	for range conflictRetries {
		s, rev, err := r.Service(ctx, id)
		if err != nil {
			return "", err
		}
		if err := change(&s); err != nil {
			return "", err
		}
		ops := []store.Op{store.Put(keyServices+id, mustJSON(s))}
		var op Operation
		if withOp {
			op = r.newOp("UPDATE_SERVICE", map[string]string{"SERVICE": id})
			ops = append(ops, store.Put(keyOperations+op.ID, mustJSON(op)))
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyServices+id, rev)}, ops...)
		if err != nil {
			return "", err
		}
		if res.Succeeded {
			return op.ID, nil
		}
	}
	return "", errConcurrent()
}

// UpdateNamespaceTags changes a namespace's tags (no operation).
func (r *Registry) UpdateNamespaceTags(ctx context.Context, id string, change func(map[string]string) error) error {
	for range conflictRetries {
		ns, rev, err := r.Namespace(ctx, id)
		if err != nil {
			return err
		}
		if ns.Tags == nil {
			ns.Tags = map[string]string{}
		}
		if err := change(ns.Tags); err != nil {
			return err
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyNamespaces+id, rev)}, store.Put(keyNamespaces+id, mustJSON(ns)))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
	return errConcurrent()
}

// DeleteService deletes a service that has no instances left.
func (r *Registry) DeleteService(ctx context.Context, id string) error {
	for range conflictRetries {
		s, rev, err := r.Service(ctx, id)
		if err != nil {
			return err
		}
		inst, err := r.st.List(ctx, keyInstances+id+"/", store.ListOptions{KeysOnly: true, Limit: 1})
		if err != nil {
			return err
		}
		if len(inst.KVs) > 0 {
			return errs.R(errs.Conflict, ReasonInUse, "Service %s has registered instances and cannot be deleted; deregister them first.", id)
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyServices+id, rev), store.PrefixUnchangedSince(keyInstances+id+"/", inst.Revision)},
			store.Delete(keyServices+id), store.Delete(keySvcNames+s.NamespaceID+"/"+dnsName(s.Name)), store.Delete(keyRevisions+id))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
	return errConcurrent()
}

// --- instances ---

func errInstanceNotFound(svc, id string) error {
	return errs.R(errs.NotFound, ReasonInstanceNotFound, "No instance exists with ID %s in service %s", id, svc)
}

// RegisterInstance creates or replaces an instance of an existing service
// and returns the REGISTER_INSTANCE operation's id. check validates the
// instance against the service as read in the same transaction.
func (r *Registry) RegisterInstance(ctx context.Context, inst Instance, check func(*Service, *Instance) error) (string, error) {
	if q, err := r.checkRequest(ctx, inst.CreatorRequestID, "instance", inst.ServiceID+"/"+inst.ID); err != nil || q != nil {
		if q != nil {
			return q.OperationID, nil
		}
		return "", err
	}
	for range conflictRetries {
		svc, svcRev, err := r.Service(ctx, inst.ServiceID)
		if err != nil {
			return "", err
		}
		var old Instance
		key := keyInstances + inst.ServiceID + "/" + inst.ID
		oldRev, err := getJSON(ctx, r.st, key, &old)
		if err != nil && !errs.Is(err, errs.NotFound) {
			return "", err
		}
		cand := inst
		if oldRev != 0 {
			cand.Created = old.Created
		} else {
			n, err := r.st.List(ctx, keyInstances+inst.ServiceID+"/", store.ListOptions{KeysOnly: true, Limit: maxInstancesPerSvc})
			if err != nil {
				return "", err
			}
			if len(n.KVs) >= maxInstancesPerSvc {
				return "", errs.E(errs.LimitExceeded, "Service %s already has %d instances, the most Cloud Map allows.", inst.ServiceID, maxInstancesPerSvc)
			}
		}
		if check != nil {
			if err := check(&svc, &cand); err != nil {
				return "", err
			}
		}
		op := r.newOp("REGISTER_INSTANCE", map[string]string{"SERVICE": inst.ServiceID, "INSTANCE": inst.ID})
		ops := []store.Op{store.Put(key, mustJSON(cand)), store.Put(keyRevisions+inst.ServiceID, nil), store.Put(keyOperations+op.ID, mustJSON(op))}
		cmps := []store.Cmp{store.ModRevisionIs(keyServices+inst.ServiceID, svcRev), store.ModRevisionIs(key, oldRev)}
		if inst.CreatorRequestID != "" {
			ops = append(ops, store.Put(keyRequests+inst.CreatorRequestID, mustJSON(request{Kind: "instance", Name: inst.ServiceID + "/" + inst.ID, OperationID: op.ID})))
			cmps = append(cmps, store.Absent(keyRequests+inst.CreatorRequestID))
		}
		res, err := r.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return "", err
		}
		if res.Succeeded {
			return op.ID, nil
		}
	}
	return "", errConcurrent()
}

// Instance reads one instance.
func (r *Registry) Instance(ctx context.Context, svcID, id string) (Instance, int64, error) {
	if _, _, err := r.Service(ctx, svcID); err != nil {
		return Instance{}, 0, err
	}
	var inst Instance
	rev, err := getJSON(ctx, r.st, keyInstances+svcID+"/"+id, &inst)
	if errs.Is(err, errs.NotFound) {
		return inst, 0, errInstanceNotFound(svcID, id)
	}
	return inst, rev, err
}

// Instances lists a service's instances by id, with the service's
// instances revision.
func (r *Registry) Instances(ctx context.Context, svcID string) ([]Instance, int64, error) {
	out, _, err := listJSON[Instance](ctx, r.st, keyInstances+svcID+"/")
	if err != nil {
		return nil, 0, err
	}
	rev, err := r.InstancesRevision(ctx, svcID)
	return out, rev, err
}

// InstancesRevision is the store revision of the service's last instance
// change (0 when none ever registered).
func (r *Registry) InstancesRevision(ctx context.Context, svcID string) (int64, error) {
	kv, err := r.st.Get(ctx, keyRevisions+svcID)
	if errs.Is(err, errs.NotFound) {
		return 0, nil
	}
	return kv.ModRevision, err
}

// DeregisterInstance deletes an instance and returns the
// DEREGISTER_INSTANCE operation's id.
func (r *Registry) DeregisterInstance(ctx context.Context, svcID, id string) (string, error) {
	_, rev, err := r.Instance(ctx, svcID, id)
	if err != nil {
		return "", err
	}
	key := keyInstances + svcID + "/" + id
	op := r.newOp("DEREGISTER_INSTANCE", map[string]string{"SERVICE": svcID, "INSTANCE": id})
	res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)},
		store.Delete(key), store.Put(keyRevisions+svcID, nil), store.Put(keyOperations+op.ID, mustJSON(op)))
	if err != nil {
		return "", err
	}
	if !res.Succeeded {
		return "", errConcurrent()
	}
	return op.ID, nil
}

// SetHealth changes an instance's health status (custom health checks).
// It does nothing when the status is already the one asked.
func (r *Registry) SetHealth(ctx context.Context, svcID, id, status string) error {
	for range conflictRetries {
		inst, rev, err := r.Instance(ctx, svcID, id)
		if err != nil {
			return err
		}
		if inst.Health == status {
			return nil
		}
		inst.Health = status
		key := keyInstances + svcID + "/" + id
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)}, store.Put(key, mustJSON(inst)), store.Put(keyRevisions+svcID, nil))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
	return errConcurrent()
}

// --- operations ---

// Operation reads an operation.
func (r *Registry) Operation(ctx context.Context, id string) (Operation, error) {
	var op Operation
	_, err := getJSON(ctx, r.st, keyOperations+id, &op)
	if errs.Is(err, errs.NotFound) {
		return op, errs.R(errs.NotFound, ReasonOperationNotFound, "No operation exists with ID: %s", id)
	}
	return op, err
}

// Operations lists every operation, by id.
func (r *Registry) Operations(ctx context.Context) ([]Operation, error) {
	out, _, err := listJSON[Operation](ctx, r.st, keyOperations)
	return out, err
}

// OperationRetention is how long operations stay readable.
const OperationRetention = 7 * 24 * time.Hour

// PruneOperations deletes operations older than retention (and the
// CreatorRequestIds that point at them); it returns how many went.
func (r *Registry) PruneOperations(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	ops, err := r.Operations(ctx)
	if err != nil {
		return 0, err
	}
	var dels []store.Op
	old := map[string]bool{}
	for _, op := range ops {
		if now.Sub(op.Updated) > retention {
			dels = append(dels, store.Delete(keyOperations+op.ID))
			old[op.ID] = true
		}
	}
	reqs, err := r.st.List(ctx, keyRequests, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	for _, kv := range reqs.KVs {
		var q request
		if json.Unmarshal(kv.Value, &q) == nil && q.OperationID != "" && old[q.OperationID] {
			dels = append(dels, store.Delete(kv.Key))
		}
	}
	max := store.MaxTxnOps(r.st)
	for chunk := range slices.Chunk(dels, max) {
		if _, err := r.st.Txn(ctx, nil, chunk...); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
