package ecs

import (
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/serviceconnect"
)

func scTD(mode ecsapi.NetworkMode) *ecsapi.TaskDefinition {
	return &ecsapi.TaskDefinition{
		TaskDefinitionArn: ptr("arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"), NetworkMode: ptr(mode),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("web"), PortMappings: []ecsapi.PortMapping{
			{Name: ptr("http"), ContainerPort: ptr(int32(8080)), AppProtocol: ptr(ecsapi.ApplicationProtocolHttp)},
			{Name: ptr("raw"), ContainerPort: ptr(int32(9000))},
			{Name: ptr("dns"), ContainerPort: ptr(int32(53)), Protocol: ptr(ecsapi.TransportProtocolUdp)},
		}}},
	}
}

func TestCheckServiceConnect(t *testing.T) {
	svc := func(sv ...ecsapi.ServiceConnectService) *ecsapi.ServiceConnectConfiguration {
		return &ecsapi.ServiceConnectConfiguration{Enabled: ptr(true), Services: sv}
	}
	alias := func(port int32, dns string) ecsapi.ServiceConnectClientAlias {
		a := ecsapi.ServiceConnectClientAlias{Port: ptr(port)}
		if dns != "" {
			a.DnsName = ptr(dns)
		}
		return a
	}
	// Defaults: discoveryName is the portName, dnsName discoveryName.namespace.
	out, err := checkServiceConnect(svc(ecsapi.ServiceConnectService{PortName: ptr("http"), ClientAliases: []ecsapi.ServiceConnectClientAlias{alias(80, "")}}),
		scTD(ecsapi.NetworkModeBridge), "corp")
	if err != nil {
		t.Fatal(err)
	}
	if deref(out.Services[0].DiscoveryName) != "http" || deref(out.Services[0].ClientAliases[0].DnsName) != "http.corp" {
		t.Fatalf("defaults: %+v", out.Services[0])
	}
	// Client-only.
	if out, err := checkServiceConnect(svc(), scTD(ecsapi.NetworkModeAwsvpc), "corp"); err != nil || out.Services != nil {
		t.Fatalf("client only: %v %+v", err, out)
	}
	bad := []struct {
		name string
		in   *ecsapi.ServiceConnectConfiguration
		mode ecsapi.NetworkMode
		want string
	}{
		{"host mode", svc(), ecsapi.NetworkModeHost, "host network mode"},
		{"unknown portName", svc(ecsapi.ServiceConnectService{PortName: ptr("nope")}), ecsapi.NetworkModeBridge, "portName 'nope'"},
		{"no portName", svc(ecsapi.ServiceConnectService{}), ecsapi.NetworkModeBridge, "portName must be specified"},
		{"udp", svc(ecsapi.ServiceConnectService{PortName: ptr("dns")}), ecsapi.NetworkModeBridge, "UDP"},
		{"tls", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), Tls: &ecsapi.ServiceConnectTlsConfiguration{}}), ecsapi.NetworkModeBridge, "TLS"},
		{"bad discovery name", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), DiscoveryName: ptr("-x")}), ecsapi.NetworkModeBridge, "discoveryName '-x'"},
		{"duplicate discovery", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), DiscoveryName: ptr("a")}, ecsapi.ServiceConnectService{PortName: ptr("raw"), DiscoveryName: ptr("a")}),
			ecsapi.NetworkModeBridge, "more than once"},
		{"duplicate alias", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), ClientAliases: []ecsapi.ServiceConnectClientAlias{alias(80, "x")}},
			ecsapi.ServiceConnectService{PortName: ptr("raw"), ClientAliases: []ecsapi.ServiceConnectClientAlias{alias(80, "X")}}), ecsapi.NetworkModeBridge, "more than once"},
		{"alias port", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), ClientAliases: []ecsapi.ServiceConnectClientAlias{alias(0, "")}}), ecsapi.NetworkModeBridge, "between 1 and 65535"},
		{"override is the container port", svc(ecsapi.ServiceConnectService{PortName: ptr("http"), IngressPortOverride: ptr(int32(8080))}), ecsapi.NetworkModeBridge, "must differ"},
		{"per-request timeout on tcp", svc(ecsapi.ServiceConnectService{PortName: ptr("raw"), Timeout: &ecsapi.TimeoutConfiguration{PerRequestTimeoutSeconds: ptr(int32(5))}}),
			ecsapi.NetworkModeBridge, "appProtocol"},
		{"no log driver", &ecsapi.ServiceConnectConfiguration{Enabled: ptr(true), LogConfiguration: &ecsapi.LogConfiguration{}}, ecsapi.NetworkModeBridge, "logDriver"},
	}
	for _, b := range bad {
		_, err := checkServiceConnect(b.in, scTD(b.mode), "corp")
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: got %v, want an error with %q", b.name, err, b.want)
		}
	}
}

func TestBuildTaskConfig(t *testing.T) {
	td := scTD(ecsapi.NetworkModeBridge)
	d := &scDeployment{NamespaceName: "corp", Config: ecsapi.ServiceConnectConfiguration{
		Enabled: ptr(true), Namespace: ptr("arn:ns"),
		LogConfiguration: &ecsapi.LogConfiguration{LogDriver: ptr(ecsapi.LogDriver("awslogs")), Options: map[string]string{"awslogs-group": "g"}},
		Services: []ecsapi.ServiceConnectService{
			{PortName: ptr("http"), DiscoveryName: ptr("web"), Timeout: &ecsapi.TimeoutConfiguration{IdleTimeoutSeconds: ptr(int32(30)), PerRequestTimeoutSeconds: ptr(int32(2))}},
			{PortName: ptr("raw"), DiscoveryName: ptr("raw"), IngressPortOverride: ptr(int32(9100))},
		}}}
	aliases := []*scAlias{
		{DNSName: "web.corp", Port: 80, DiscoveryName: "web", VIP: "127.255.0.2", Protocol: "http", PerRequest: ptr(int32(2))},
		{DNSName: "api", Port: 8080, DiscoveryName: "api", VIP: "127.255.0.1", Protocol: "grpc"},
	}
	tc := buildTaskConfig(d, td, aliases, "arn:svc", "dep1", "ecs-service-connect-x")
	want := []serviceconnect.Inbound{
		{PortName: "http", DiscoveryName: "web", ListenPort: 15000, AppPort: 8080, Protocol: "http", IdleTimeout: 30 * time.Second, PerRequestTimeout: 2 * time.Second},
		{PortName: "raw", DiscoveryName: "raw", ListenPort: 9100, AppPort: 9000, Protocol: "tcp"},
	}
	if !jsonEqual(tc.Inbound, want) {
		t.Fatalf("inbound %+v", tc.Inbound)
	}
	if len(tc.Outbound) != 2 || tc.Outbound[0].DNSName != "api" || tc.Outbound[0].VIP != "127.255.0.1" || tc.Outbound[1].PerRequestTimeout != 2*time.Second {
		t.Fatalf("outbound %+v", tc.Outbound)
	}
	if tc.NamespaceArn != "arn:ns" || tc.ServiceArn != "arn:svc" || tc.DeploymentID != "dep1" || tc.LogDriver != "awslogs" || tc.LogOptions["awslogs-group"] != "g" {
		t.Fatalf("task config %+v", tc)
	}
}

func TestServiceConnectEndpoints(t *testing.T) {
	sv := ecsapi.Service{Deployments: []ecsapi.Deployment{{Id: ptr("d1"), ServiceConnectConfiguration: &ecsapi.ServiceConnectConfiguration{
		Namespace: ptr("arn:ns"), Services: []ecsapi.ServiceConnectService{{DiscoveryName: ptr("web")}, {DiscoveryName: ptr("raw"), IngressPortOverride: ptr(int32(9100))}}},
		ServiceConnectResources: []ecsapi.ServiceConnectServiceResource{{DiscoveryName: ptr("web"), DiscoveryArn: ptr("arn:srv-web")}}}}}
	bridge := ecsapi.Task{TaskArn: ptr("t1"), StartedBy: ptr("d1"), LastStatus: ptr("RUNNING"), DesiredStatus: ptr("RUNNING"),
		Containers: []ecsapi.Container{{Name: ptr("web")}, {Name: ptr("ecs-service-connect-ab"), NetworkBindings: []ecsapi.NetworkBinding{
			{ContainerPort: ptr(int32(15000)), HostPort: ptr(int32(32770)), BindIP: ptr("::")},
			{ContainerPort: ptr(int32(15000)), HostPort: ptr(int32(32768)), BindIP: ptr("0.0.0.0")},
			{ContainerPort: ptr(int32(9100)), HostPort: ptr(int32(32769))}}}}}
	eps := ServiceConnectEndpoints(bridge, sv, func(string) string { return "10.0.0.9" })
	if len(eps) != 2 || eps[0].Port != 32768 || eps[0].Address != "10.0.0.9" || eps[0].DiscoveryArn != "arn:srv-web" || eps[1].Port != 32769 || !eps[0].Running || !eps[0].Wanted {
		t.Fatalf("bridge endpoints %+v", eps)
	}
	awsvpc := ecsapi.Task{TaskArn: ptr("t2"), StartedBy: ptr("d1"), LastStatus: ptr("RUNNING"), DesiredStatus: ptr("STOPPED"),
		Containers: []ecsapi.Container{{Name: ptr("web"), NetworkInterfaces: []ecsapi.NetworkInterface{{PrivateIpv4Address: ptr("172.30.0.5")}}}}}
	eps = ServiceConnectEndpoints(awsvpc, sv, nil)
	if len(eps) != 2 || eps[0].Address != "172.30.0.5" || eps[0].Port != 15000 || eps[1].Port != 9100 || eps[0].Wanted {
		t.Fatalf("awsvpc endpoints %+v", eps)
	}
	// Not bound yet; another deployment.
	if eps := ServiceConnectEndpoints(ecsapi.Task{StartedBy: ptr("d1")}, sv, func(string) string { return "10.0.0.9" }); len(eps) != 0 {
		t.Fatalf("unbound: %+v", eps)
	}
	if eps := ServiceConnectEndpoints(ecsapi.Task{StartedBy: ptr("d2")}, sv, nil); eps != nil {
		t.Fatalf("other deployment: %+v", eps)
	}
}
