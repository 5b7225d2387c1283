package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/serviceconnect"
	"github.com/berthdev/berth/internal/store"
)

// Service Connect's control plane (docs/service-connect.md): a service's
// serviceConnectConfiguration is validated and resolved here into an
// scDeployment kept with each deployment; the names it claims (discovery
// names and client aliases, unique in their namespace) and the virtual
// addresses of the aliases live in one record per namespace:
//
//	/berth/ecs/scnamespaces/<namespace id>  scNamespaceRecord
//
// The Cloud Map side (namespaces, the services ECS creates in them, task
// instances) is reached through ServiceConnectNamespaces, which the daemon
// wires to internal/cloudmap.
const keySCNamespaces = "/berth/ecs/scnamespaces/"

// SCNamespace is a Cloud Map namespace as Service Connect uses it.
type SCNamespace struct {
	ID   string
	ARN  string
	Name string
}

// ServiceConnectNamespaces is what ECS needs of Cloud Map.
type ServiceConnectNamespaces interface {
	// Namespace finds a namespace by name or ARN (found false when none).
	Namespace(ctx context.Context, ref string) (ns SCNamespace, found bool, err error)
	// EnsureHTTPNamespace returns the namespace named name, creating an
	// HTTP namespace when none exists (as ECS does for a cluster's
	// serviceConnectDefaults).
	EnsureHTTPNamespace(ctx context.Context, name string) (SCNamespace, error)
	// EnsureService returns the ARN of the Cloud Map service name of the
	// namespace, creating it when missing.
	EnsureService(ctx context.Context, ns SCNamespace, name string) (string, error)
}

// SetServiceConnect enables Service Connect with the given Cloud Map
// backend; without one, serviceConnectConfiguration is refused.
func (s *Service) SetServiceConnect(ns ServiceConnectNamespaces) { s.scNamespaces = ns }

// Ports the control plane gives inbound proxy listeners that have no
// ingressPortOverride: scListenBase + the entry's index (ECS instead
// redirects the container port to the proxy with iptables).
const scListenBase = 15000

// ProxyContainerPrefix starts the name of a task's Service Connect proxy
// container, as on ECS.
const ProxyContainerPrefix = "ecs-service-connect-"

// scAlias is one client alias claimed in a namespace.
type scAlias struct {
	DNSName       string `json:"dnsName"`
	Port          int    `json:"port"`
	DiscoveryName string `json:"discoveryName"`
	Owner         string `json:"owner"` // ECS service ARN
	Protocol      string `json:"protocol"`
	IdleTimeout   int32  `json:"idleTimeout,omitempty"` // seconds; 0: default
	PerRequest    *int32 `json:"perRequest,omitempty"`  // seconds; nil: default
	VIP           string `json:"vip"`                   // kept for the alias forever
}

// scNamespaceRecord is a namespace's claims.
type scNamespaceRecord struct {
	NamespaceARN string `json:"namespaceArn"`
	// Discovery maps a discovery name (lower case) to the ECS service
	// ARN that owns it.
	Discovery map[string]string `json:"discovery"`
	// Aliases by "dnsname:port" (lower case).
	Aliases map[string]*scAlias `json:"aliases"`
	// VIPs keeps every alias's address, also after it is released, so an
	// alias never changes address; NextVIP is the next number to give.
	VIPs    map[string]string `json:"vips"`
	NextVIP int               `json:"nextVip"`
}

func aliasKey(dns string, port int) string { return strings.ToLower(dns) + ":" + strconv.Itoa(port) }

var discoveryNameRE = lazyre.New(`^[a-z0-9_][a-z0-9_-]{0,63}$`)
var scDNSNameRE = lazyre.New(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,253}[A-Za-z0-9_])?$`)

// appProtocol of a port mapping as a proxy protocol.
func scProtocol(pm ecsapi.PortMapping) string {
	switch deref(pm.AppProtocol) {
	case ecsapi.ApplicationProtocolHttp:
		return serviceconnect.ProtocolHTTP
	case ecsapi.ApplicationProtocolHttp2:
		return serviceconnect.ProtocolHTTP2
	case ecsapi.ApplicationProtocolGrpc:
		return serviceconnect.ProtocolGRPC
	}
	return serviceconnect.ProtocolTCP
}

// namedPortMapping finds the port mapping named name in td.
func namedPortMapping(td *ecsapi.TaskDefinition, name string) (ecsapi.PortMapping, string, bool) {
	for _, cd := range td.ContainerDefinitions {
		for _, pm := range cd.PortMappings {
			if deref(pm.Name) == name {
				return pm, deref(cd.Name), true
			}
		}
	}
	return ecsapi.PortMapping{}, "", false
}

// checkServiceConnect applies ECS's rules to a configuration against the
// task definition, without reading anything: a pure function. It returns
// the configuration with the defaults filled in (the namespace left as
// given).
func checkServiceConnect(in *ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition, nsName string) (ecsapi.ServiceConnectConfiguration, error) {
	out := *in
	mode := deref(td.NetworkMode)
	if mode == "" {
		mode = ecsapi.NetworkModeBridge
	}
	if mode == ecsapi.NetworkModeHost || mode == ecsapi.NetworkModeNone {
		return out, invalid("Service Connect is not supported for task definitions with the %s network mode. Use the awsvpc or bridge network mode.", mode)
	}
	if in.AccessLogConfiguration != nil {
		return out, invalid("Berth does not support Service Connect access logs (accessLogConfiguration) yet.")
	}
	if lc := in.LogConfiguration; lc != nil && deref(lc.LogDriver) == "" {
		return out, invalid("logConfiguration.logDriver must be specified.")
	}
	out.Services = nil
	seenDiscovery := map[string]bool{}
	seenAlias := map[string]bool{}
	seenPort := map[int32]bool{}
	for i, sv := range in.Services {
		portName := deref(sv.PortName)
		if portName == "" {
			return out, invalid("portName must be specified for each Service Connect service.")
		}
		pm, _, ok := namedPortMapping(td, portName)
		if !ok {
			return out, invalid("The portName '%s' specified in the Service Connect configuration does not match a port mapping name in the task definition %s.", portName, deref(td.TaskDefinitionArn))
		}
		if sv.Tls != nil {
			return out, invalid("Berth does not support TLS for Service Connect (services[%d].tls): it has no AWS Private CA. Remove tls; traffic between proxies is plain.", i)
		}
		if deref(pm.Protocol) == ecsapi.TransportProtocolUdp {
			return out, invalid("Service Connect does not support UDP port mappings (portName '%s').", portName)
		}
		disc := deref(sv.DiscoveryName)
		if disc == "" {
			disc = portName
		}
		if !discoveryNameRE.MatchString(disc) {
			return out, invalid("The discoveryName '%s' is invalid. It can contain up to 64 lowercase letters, numbers, underscores and hyphens, and can't start with a hyphen.", disc)
		}
		if seenDiscovery[disc] {
			return out, invalid("The discoveryName '%s' is used more than once in the Service Connect configuration.", disc)
		}
		seenDiscovery[disc] = true
		if p := sv.IngressPortOverride; p != nil {
			if *p < 1 || *p > 65535 {
				return out, invalid("ingressPortOverride must be between 1 and 65535.")
			}
			if *p == deref(pm.ContainerPort) {
				return out, invalid("ingressPortOverride %d must differ from the container port of portName '%s'.", *p, portName)
			}
		}
		listen := int32(scListenBase + i)
		if sv.IngressPortOverride != nil {
			listen = *sv.IngressPortOverride
		}
		if seenPort[listen] {
			return out, invalid("The ingress port %d is used by more than one Service Connect service.", listen)
		}
		seenPort[listen] = true
		if t := sv.Timeout; t != nil {
			if v := t.IdleTimeoutSeconds; v != nil && (*v < 0 || *v > 2147483647) {
				return out, invalid("idleTimeoutSeconds must not be negative.")
			}
			if v := t.PerRequestTimeoutSeconds; v != nil && *v < 0 {
				return out, invalid("perRequestTimeoutSeconds must not be negative.")
			}
			if t.PerRequestTimeoutSeconds != nil && scProtocol(pm) == serviceconnect.ProtocolTCP {
				return out, invalid("perRequestTimeoutSeconds can only be set for a port mapping whose appProtocol is http, http2 or grpc (portName '%s').", portName)
			}
		}
		o := sv
		o.DiscoveryName = ptr(disc)
		o.ClientAliases = nil
		for _, ca := range sv.ClientAliases {
			port := deref(ca.Port)
			if port < 1 || port > 65535 {
				return out, invalid("The port of a client alias must be between 1 and 65535.")
			}
			if ca.TestTrafficRules != nil {
				return out, invalid("Berth does not support testTrafficRules on client aliases.")
			}
			dns := deref(ca.DnsName)
			if dns == "" {
				dns = disc + "." + nsName
			}
			if !scDNSNameRE.MatchString(dns) {
				return out, invalid("The dnsName '%s' of a client alias is not a valid DNS name.", dns)
			}
			k := aliasKey(dns, int(port))
			if seenAlias[k] {
				return out, invalid("The client alias %s:%d is used more than once in the Service Connect configuration.", dns, port)
			}
			seenAlias[k] = true
			o.ClientAliases = append(o.ClientAliases, ecsapi.ServiceConnectClientAlias{Port: ptr(port), DnsName: ptr(dns)})
		}
		out.Services = append(out.Services, o)
	}
	if len(out.Services) == 0 {
		out.Services = nil
	}
	return out, nil
}

// resolveServiceConnect validates a service's configuration, claims its
// discovery names and aliases in the namespace for serviceARN, and makes
// the Cloud Map services. nil when Service Connect is off.
func (s *Service) resolveServiceConnect(ctx context.Context, c *clusterRecord, in *ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition, serviceARN string) (*scDeployment, error) {
	if in == nil || !deref(in.Enabled) {
		if in != nil && (len(in.Services) > 0 || in.Namespace != nil) {
			return nil, invalid("Service Connect configuration has services or a namespace but is not enabled.")
		}
		return nil, nil
	}
	if s.scNamespaces == nil {
		return nil, invalid("Berth does not support Service Connect in this configuration (no Cloud Map).")
	}
	ref := deref(in.Namespace)
	if ref == "" && c.ServiceConnectDefaults != nil {
		ref = deref(c.ServiceConnectDefaults.Namespace)
	}
	if ref == "" {
		return nil, invalid("Service Connect namespace must be specified, either in the serviceConnectConfiguration or as the cluster's serviceConnectDefaults.")
	}
	ns, found, err := s.scNamespaces.Namespace(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNamespaceNotFound(ref)
	}
	cfg, err := checkServiceConnect(in, td, ns.Name)
	if err != nil {
		return nil, err
	}
	cfg.Namespace = ptr(ns.ARN)
	if err := s.claimServiceConnect(ctx, ns, cfg, td, serviceARN); err != nil {
		return nil, err
	}
	d := &scDeployment{Config: cfg, NamespaceID: ns.ID, NamespaceName: ns.Name}
	for _, sv := range cfg.Services {
		a, err := s.scNamespaces.EnsureService(ctx, ns, deref(sv.DiscoveryName))
		if err != nil {
			return nil, err
		}
		d.Resources = append(d.Resources, ecsapi.ServiceConnectServiceResource{DiscoveryName: sv.DiscoveryName, DiscoveryArn: ptr(a)})
	}
	return d, nil
}

// getSCNamespace reads a namespace's claims (empty when none yet).
func (s *Service) getSCNamespace(ctx context.Context, nsID string) (scNamespaceRecord, int64, error) {
	rec := scNamespaceRecord{Discovery: map[string]string{}, Aliases: map[string]*scAlias{}, VIPs: map[string]string{}, NextVIP: 1}
	kv, err := s.st.Get(ctx, keySCNamespaces+nsID)
	if errs.Is(err, errs.NotFound) {
		return rec, 0, nil
	}
	if err != nil {
		return rec, 0, err
	}
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, 0, errs.Wrap(errs.Internal, err, "decode service connect namespace")
	}
	if rec.Discovery == nil {
		rec.Discovery = map[string]string{}
	}
	if rec.Aliases == nil {
		rec.Aliases = map[string]*scAlias{}
	}
	if rec.VIPs == nil {
		rec.VIPs = map[string]string{}
	}
	return rec, kv.ModRevision, nil
}

// ownerUses says whether the ECS service owner still uses discovery name
// disc in namespace nsID in any of its deployments (a claim of a service
// that was deleted or changed its configuration is free).
func (s *Service) ownerUses(ctx context.Context, owner, nsID, disc string) (bool, error) {
	cluster, name, ok := splitServiceARN(owner)
	if !ok {
		return false, nil
	}
	r, _, err := s.getService(ctx, cluster, name)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.Status == "INACTIVE" {
		return false, nil
	}
	for _, d := range r.SCDeployments {
		if d.NamespaceID != nsID {
			continue
		}
		for _, sv := range d.Config.Services {
			if strings.EqualFold(deref(sv.DiscoveryName), disc) {
				return true, nil
			}
		}
	}
	return false, nil
}

// splitServiceARN gives the cluster and name of an ECS service ARN.
func splitServiceARN(a string) (cluster, name string, ok bool) {
	_, rest, found := strings.Cut(a, ":service/")
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// claimServiceConnect claims cfg's discovery names and aliases in the
// namespace for serviceARN, giving new aliases their VIPs. A name owned by
// another service that still uses it is refused with ECS's message.
func (s *Service) claimServiceConnect(ctx context.Context, ns SCNamespace, cfg ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition, serviceARN string) error {
	for range 10 {
		rec, rev, err := s.getSCNamespace(ctx, ns.ID)
		if err != nil {
			return err
		}
		rec.NamespaceARN = ns.ARN
		for _, sv := range cfg.Services {
			disc := strings.ToLower(deref(sv.DiscoveryName))
			if owner, ok := rec.Discovery[disc]; ok && owner != serviceARN {
				used, err := s.ownerUses(ctx, owner, ns.ID, disc)
				if err != nil {
					return err
				}
				if used {
					return invalid("The discoveryName '%s' is already used by the service %s in the namespace %s. A discovery name must be unique within the namespace.", deref(sv.DiscoveryName), owner, ns.Name)
				}
			}
			rec.Discovery[disc] = serviceARN
			pm, _, _ := namedPortMapping(td, deref(sv.PortName))
			for _, ca := range sv.ClientAliases {
				k := aliasKey(deref(ca.DnsName), int(deref(ca.Port)))
				if a, ok := rec.Aliases[k]; ok && a.Owner != serviceARN && !strings.EqualFold(a.DiscoveryName, disc) {
					used, err := s.ownerUses(ctx, a.Owner, ns.ID, a.DiscoveryName)
					if err != nil {
						return err
					}
					if used {
						return invalid("The client alias %s:%d is already used by the service %s in the namespace %s. Client aliases must be unique within the namespace.", deref(ca.DnsName), deref(ca.Port), a.Owner, ns.Name)
					}
				}
				vip := rec.VIPs[k]
				if vip == "" {
					v, err := serviceconnect.VIP(rec.NextVIP)
					if err != nil {
						return errs.E(errs.LimitExceeded, "The namespace %s has no client alias address left.", ns.Name)
					}
					rec.NextVIP++
					vip = v
					rec.VIPs[k] = vip
				}
				a := &scAlias{DNSName: deref(ca.DnsName), Port: int(deref(ca.Port)), DiscoveryName: deref(sv.DiscoveryName), Owner: serviceARN,
					Protocol: scProtocol(pm), VIP: vip}
				if t := sv.Timeout; t != nil {
					a.IdleTimeout = deref(t.IdleTimeoutSeconds)
					a.PerRequest = t.PerRequestTimeoutSeconds
				}
				rec.Aliases[k] = a
			}
		}
		b, _ := json.Marshal(rec)
		cmp := store.Absent(keySCNamespaces + ns.ID)
		if rev > 0 {
			cmp = store.ModRevisionIs(keySCNamespaces+ns.ID, rev)
		}
		res, err := s.st.Txn(ctx, []store.Cmp{cmp}, store.Put(keySCNamespaces+ns.ID, b))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
	return errs.E(errs.Unavailable, "too many concurrent Service Connect changes in namespace %s; retry", ns.Name)
}

// timeouts gives a service entry's idle and per-request timeouts (0: the
// proxy's defaults).
func scTimeouts(t *ecsapi.TimeoutConfiguration) (idle, perReq time.Duration) {
	if t == nil {
		return 0, 0
	}
	return time.Duration(deref(t.IdleTimeoutSeconds)) * time.Second, time.Duration(deref(t.PerRequestTimeoutSeconds)) * time.Second
}

// ServiceConnectListenPort is the port the proxy of a task listens on for
// the i-th service entry of a configuration: ingressPortOverride, or
// 15000+i.
func ServiceConnectListenPort(i int, sv ecsapi.ServiceConnectService) int {
	if sv.IngressPortOverride != nil {
		return int(*sv.IngressPortOverride)
	}
	return scListenBase + i
}

// buildTaskConfig makes a task's Service Connect configuration from its
// deployment's and the namespace's aliases at that moment: a pure
// function. Aliases whose owner no longer uses them are left out by the
// caller (live).
func buildTaskConfig(d *scDeployment, td *ecsapi.TaskDefinition, aliases []*scAlias, serviceARN, deploymentID, proxyName string) *serviceconnect.TaskConfig {
	tc := &serviceconnect.TaskConfig{
		NamespaceArn: deref(d.Config.Namespace), NamespaceName: d.NamespaceName,
		ServiceArn: serviceARN, DeploymentID: deploymentID, ProxyContainerName: proxyName,
	}
	if lc := d.Config.LogConfiguration; lc != nil {
		tc.LogDriver = string(deref(lc.LogDriver))
		tc.LogOptions = lc.Options
	}
	for i, sv := range d.Config.Services {
		pm, _, _ := namedPortMapping(td, deref(sv.PortName))
		idle, per := scTimeouts(sv.Timeout)
		tc.Inbound = append(tc.Inbound, serviceconnect.Inbound{
			PortName: deref(sv.PortName), DiscoveryName: deref(sv.DiscoveryName),
			ListenPort: ServiceConnectListenPort(i, sv), AppPort: int(deref(pm.ContainerPort)),
			Protocol: scProtocol(pm), IdleTimeout: idle, PerRequestTimeout: per,
		})
	}
	sorted := slices.Clone(aliases)
	slices.SortFunc(sorted, func(a, b *scAlias) int {
		return strings.Compare(aliasKey(a.DNSName, a.Port), aliasKey(b.DNSName, b.Port))
	})
	for _, a := range sorted {
		o := serviceconnect.Outbound{DiscoveryName: a.DiscoveryName, DNSName: a.DNSName, Port: a.Port, VIP: a.VIP, Protocol: a.Protocol,
			IdleTimeout: time.Duration(a.IdleTimeout) * time.Second}
		if a.PerRequest != nil {
			o.PerRequestTimeout = time.Duration(*a.PerRequest) * time.Second
		}
		tc.Outbound = append(tc.Outbound, o)
	}
	return tc
}

// liveAliases lists the aliases of a namespace whose owner still uses them.
func (s *Service) liveAliases(ctx context.Context, nsID string) ([]*scAlias, error) {
	rec, _, err := s.getSCNamespace(ctx, nsID)
	if err != nil {
		return nil, err
	}
	var out []*scAlias
	used := map[string]bool{}
	for _, a := range rec.Aliases {
		k := a.Owner + "|" + strings.ToLower(a.DiscoveryName)
		u, ok := used[k]
		if !ok {
			if u, err = s.ownerUses(ctx, a.Owner, nsID, a.DiscoveryName); err != nil {
				return nil, err
			}
			used[k] = u
		}
		if u {
			out = append(out, a)
		}
	}
	return out, nil
}

// taskServiceConnect gives the Service Connect configuration of a task a
// deployment of r places (nil without Service Connect). The proxy name is
// filled in per task (newTask).
func (s *Service) taskServiceConnect(ctx context.Context, r *serviceRecord, deploymentID string, td *ecsapi.TaskDefinition) (*serviceconnect.TaskConfig, error) {
	d := r.SCDeployments[deploymentID]
	if d == nil {
		return nil, nil
	}
	aliases, err := s.liveAliases(ctx, d.NamespaceID)
	if err != nil {
		return nil, err
	}
	return buildTaskConfig(d, td, aliases, r.ARN, deploymentID, ""), nil
}

// proxyContainerName gives a task's proxy container its name.
func proxyContainerName() string {
	return ProxyContainerPrefix + newID()[:8]
}

// InstanceUsesNamespace says whether a task assigned to the instance (and
// not stopped) uses the Service Connect namespace nsARN: the agent may
// then follow the namespace's directory.
func (s *Service) InstanceUsesNamespace(ctx context.Context, cred AgentCredential, nsARN string) (bool, error) {
	res, err := s.st.List(ctx, keyAssign+cred.InstanceID+"/", store.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, kv := range res.KVs {
		var ar assignmentRecord
		if json.Unmarshal(kv.Value, &ar) != nil {
			continue
		}
		t, _, err := s.getTask(ctx, ar.Cluster, ar.TaskID)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if t.ServiceConnect != nil && t.ServiceConnect.NamespaceArn == nsARN && t.LastStatus != "STOPPED" {
			return true, nil
		}
	}
	return false, nil
}

// HealthChecked says whether the task definition has a health check on an
// essential container (then a task serves only once HEALTHY).
func (s *Service) HealthChecked(ctx context.Context, tdARN string) bool {
	td, err := s.tdCache.get(ctx, s, tdARN)
	if err != nil {
		return false
	}
	return healthChecked(&td.TaskDefinition)
}

// scShown gives the Service Connect fields of a deployment as
// DescribeServices shows them.
func scShown(d *scDeployment) (*ecsapi.ServiceConnectConfiguration, []ecsapi.ServiceConnectServiceResource) {
	if d == nil {
		return nil, nil
	}
	c := d.Config
	return &c, d.Resources
}

// scEqual says whether two requested configurations resolve the same.
func scEqual(a *scDeployment, b *scDeployment) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return jsonEqual(a.Config, b.Config)
}

// updatedServiceConnect resolves the Service Connect configuration an
// UpdateService asks for: the new one when given, else the current one
// checked against a new task definition. changed false: keep the current.
func (s *Service) updatedServiceConnect(ctx context.Context, cluster, name string, in *ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition) (*scDeployment, bool, error) {
	if in == nil && td == nil {
		return nil, false, nil
	}
	r, _, err := s.getService(ctx, cluster, name)
	if errs.Is(err, errs.NotFound) {
		return nil, false, errServiceNotFound()
	}
	if err != nil {
		return nil, false, err
	}
	cur := r.PrimarySC()
	if in == nil {
		if cur == nil {
			return nil, false, nil
		}
		c := cur.Config
		in = &c
	}
	if td == nil {
		rec, _, err := s.findTaskDef(ctx, r.TaskDefinition)
		if err != nil {
			return nil, false, err
		}
		td = &rec.TaskDefinition
	}
	c, _, err := s.getCluster(ctx, cluster, false)
	if err != nil {
		return nil, false, err
	}
	d, err := s.resolveServiceConnect(ctx, &c, in, td, r.ARN)
	return d, true, err
}

// serviceConnectSpec adds a deployment's Service Connect configuration to
// the spec of the tasks it starts. In bridge mode each inbound listener
// takes a dynamic host port (the agent publishes it), which placement
// accounts for.
func (s *Service) serviceConnectSpec(ctx context.Context, r *serviceRecord, deploymentID string, spec *taskSpec) error {
	tc, err := s.taskServiceConnect(ctx, r, deploymentID, &spec.TD)
	if err != nil || tc == nil {
		return err
	}
	spec.SC = tc
	if m := deref(spec.TD.NetworkMode); m == "" || m == ecsapi.NetworkModeBridge {
		spec.Dynamic += len(tc.Inbound)
		spec.Req.DynamicPorts = spec.Dynamic
	}
	return nil
}

// taskSC gives one task of the spec its own copy of the configuration,
// with its proxy container's name.
func taskSC(spec *taskSpec) *serviceconnect.TaskConfig {
	if spec.SC == nil {
		return nil
	}
	tc := *spec.SC
	tc.ProxyContainerName = proxyContainerName()
	return &tc
}

func errNamespaceNotFound(ref string) error {
	return errs.R(errs.NotFound, reasonNamespaceMissing, "The specified namespace %s wasn't found.", ref)
}

// clusterSCDefaults resolves a cluster's serviceConnectDefaults namespace:
// a name that does not exist becomes a new HTTP namespace (as ECS does);
// an ARN must exist. ECS shows the namespace's ARN.
func (s *Service) clusterSCDefaults(ctx context.Context, ref string) (*ecsapi.ClusterServiceConnectDefaults, error) {
	if ref == "" {
		return nil, nil
	}
	if s.scNamespaces == nil {
		return &ecsapi.ClusterServiceConnectDefaults{Namespace: ptr(ref)}, nil
	}
	ns, found, err := s.scNamespaces.Namespace(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !found {
		if strings.HasPrefix(ref, "arn:") {
			return nil, errNamespaceNotFound(ref)
		}
		if ns, err = s.scNamespaces.EnsureHTTPNamespace(ctx, ref); err != nil {
			return nil, err
		}
	}
	return &ecsapi.ClusterServiceConnectDefaults{Namespace: ptr(ns.ARN)}, nil
}

// SCEndpoint is one task's inbound Service Connect listener as other
// tasks reach it.
type SCEndpoint struct {
	NamespaceArn  string
	DiscoveryName string
	DiscoveryArn  string // the Cloud Map service
	TaskArn       string
	Address       string
	Port          int
	// Running: the task is RUNNING; Wanted: it is desired RUNNING.
	Running bool
	Wanted  bool
}

// ServiceConnectEndpoints gives the endpoints of a task of service sv (as
// the feed shows them), from the Service Connect configuration of the
// deployment that started it: in awsvpc mode the task's address and the
// listen port; in bridge mode the container instance's address (hostIP)
// and the host port the agent bound to the proxy's listen port. Entries
// whose address is not known yet are left out. A pure function.
func ServiceConnectEndpoints(t ecsapi.Task, sv ecsapi.Service, hostIP func(containerInstanceArn string) string) []SCEndpoint {
	var dep *ecsapi.Deployment
	for i := range sv.Deployments {
		if deref(sv.Deployments[i].Id) == deref(t.StartedBy) {
			dep = &sv.Deployments[i]
		}
	}
	if dep == nil || dep.ServiceConnectConfiguration == nil || len(dep.ServiceConnectConfiguration.Services) == 0 {
		return nil
	}
	var ip string
	var proxy *ecsapi.Container
	for i := range t.Containers {
		c := &t.Containers[i]
		if strings.HasPrefix(deref(c.Name), ProxyContainerPrefix) {
			proxy = c
		}
		for _, ni := range c.NetworkInterfaces {
			if v := deref(ni.PrivateIpv4Address); v != "" && ip == "" {
				ip = v
			}
		}
	}
	awsvpc := ip != ""
	if !awsvpc && hostIP != nil {
		ip = hostIP(deref(t.ContainerInstanceArn))
	}
	if ip == "" {
		return nil
	}
	arns := map[string]string{}
	for _, r := range dep.ServiceConnectResources {
		arns[deref(r.DiscoveryName)] = deref(r.DiscoveryArn)
	}
	var out []SCEndpoint
	for i, s := range dep.ServiceConnectConfiguration.Services {
		port := ServiceConnectListenPort(i, s)
		if !awsvpc {
			port = 0
			if proxy != nil {
				// The IPv4 binding: Docker may publish IPv6 on another
				// host port, and the endpoint's address is IPv4.
				for _, b := range proxy.NetworkBindings {
					if int(deref(b.ContainerPort)) == ServiceConnectListenPort(i, s) && deref(b.HostPort) != 0 &&
						(port == 0 || !strings.Contains(deref(b.BindIP), ":")) {
						port = int(deref(b.HostPort))
						if !strings.Contains(deref(b.BindIP), ":") {
							break
						}
					}
				}
			}
			if port == 0 {
				continue
			}
		}
		out = append(out, SCEndpoint{
			NamespaceArn: deref(dep.ServiceConnectConfiguration.Namespace), DiscoveryName: deref(s.DiscoveryName),
			DiscoveryArn: arns[deref(s.DiscoveryName)], TaskArn: deref(t.TaskArn), Address: ip, Port: port,
			Running: deref(t.LastStatus) == "RUNNING", Wanted: deref(t.DesiredStatus) == DesiredRunning,
		})
	}
	return out
}
