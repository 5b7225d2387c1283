package cloudmap

import (
	"context"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	sd "github.com/berthdev/berth/internal/api/servicediscoveryapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

// ServiceConnect returns what ECS needs of Cloud Map for Service Connect
// (ecs.ServiceConnectNamespaces): finding namespaces, creating the HTTP
// namespace of a cluster's serviceConnectDefaults, and the Cloud Map
// service of each discovery name.
func (a *API) ServiceConnect() ecs.ServiceConnectNamespaces { return scBackend{a} }

type scBackend struct{ a *API }

func scNamespace(ns Namespace) ecs.SCNamespace {
	return ecs.SCNamespace{ID: ns.ID, ARN: ns.ARN, Name: ns.Name}
}

func (b scBackend) Namespace(ctx context.Context, ref string) (ecs.SCNamespace, bool, error) {
	var ns Namespace
	var err error
	if arn.IsARN(ref) {
		p, perr := arn.Parse(ref)
		id, ok := strings.CutPrefix(p.Resource, "namespace/")
		if perr != nil || p.Service != "servicediscovery" || !ok {
			return ecs.SCNamespace{}, false, nil
		}
		ns, _, err = b.a.reg.Namespace(ctx, id)
	} else {
		ns, err = b.a.reg.NamespaceByName(ctx, ref)
	}
	if errs.Is(err, errs.NotFound) {
		return ecs.SCNamespace{}, false, nil
	}
	if err != nil {
		return ecs.SCNamespace{}, false, err
	}
	return scNamespace(ns), true, nil
}

func (b scBackend) EnsureHTTPNamespace(ctx context.Context, name string) (ecs.SCNamespace, error) {
	if _, err := b.a.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceRequest{Name: &name}); err != nil && !errs.Is(err, errs.AlreadyExists) {
		return ecs.SCNamespace{}, err
	}
	ns, err := b.a.reg.NamespaceByName(ctx, name)
	if err != nil {
		return ecs.SCNamespace{}, err
	}
	return scNamespace(ns), nil
}

func (b scBackend) EnsureService(ctx context.Context, ns ecs.SCNamespace, name string) (string, error) {
	for range conflictRetries {
		s, err := b.a.reg.ServiceByName(ctx, ns.ID, name)
		if err == nil {
			return s.ARN, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return "", err
		}
		id := newServiceID()
		s, err = b.a.reg.CreateService(ctx, Service{ID: id, ARN: b.a.arns.Service("servicediscovery", "service/"+id), Name: name,
			NamespaceID: ns.ID, Type: "HTTP", Description: "Managed by Amazon ECS Service Connect", Created: b.a.now()})
		if err == nil {
			return s.ARN, nil
		}
		if !errs.Is(err, errs.AlreadyExists) {
			return "", err
		}
	}
	return "", errConcurrent()
}

// serviceConnectInstances are the instances a RUNNING task of a Service
// Connect service registers: one per discovery name of the deployment
// that started it, in the Cloud Map service ECS made for it, with the
// task's inbound endpoint (AWS_INSTANCE_PORT is the proxy's listen port,
// or in bridge mode the host port bound to it) and ECS's attributes.
func serviceConnectInstances(t ecsapi.Task, sv ecsapi.Service, name string, hostIP func(string) string) []desired {
	var out []desired
	for _, ep := range ecs.ServiceConnectEndpoints(t, sv, hostIP) {
		a, err := arn.Parse(ep.DiscoveryArn)
		if err != nil {
			continue
		}
		srvID, ok := strings.CutPrefix(a.Resource, "service/")
		if !ok {
			continue
		}
		attrs, _ := taskAttributes(t, ecsapi.ServiceRegistry{}, hostIP)
		if attrs == nil {
			continue
		}
		attrs[AttrIPv4] = ep.Address
		attrs[AttrPort] = strconv.Itoa(ep.Port)
		attrs["ECS_SERVICE_NAME"] = name
		taskARN := deref(t.TaskArn)
		out = append(out, desired{serviceID: srvID, id: taskARN[strings.LastIndexByte(taskARN, '/')+1:], owner: ownerPrefix + taskARN, attrs: attrs})
	}
	return out
}

// LocalIPv4 is this machine's first non-loopback IPv4: the address of
// bridge and host mode tasks with berth up (server and agent on one
// machine).
func LocalIPv4() string { return localIPv4() }
