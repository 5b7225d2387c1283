package cloudmap

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

func kv(k, v string) store.KV { return store.KV{Key: k, Value: []byte(v)} }

// testSnapshot: namespace corp.local (SOA TTL 30) with web (A+SRV, two
// healthy instances and an unhealthy one), one (WEIGHTED A), many (12
// instances), empty (no instances), and an HTTP namespace api.
func testSnapshot() *Snapshot {
	kvs := []store.KV{
		kv(keyNamespaces+"ns-1", `{"id":"ns-1","name":"Corp.Local","type":"DNS_PRIVATE","soaTtl":30}`),
		kv(keyNamespaces+"ns-2", `{"id":"ns-2","name":"api","type":"HTTP"}`),
		kv(keyServices+"srv-1", `{"id":"srv-1","name":"web","namespaceId":"ns-1","routingPolicy":"MULTIVALUE","records":[{"type":"A","ttl":10},{"type":"SRV","ttl":20}]}`),
		kv(keyServices+"srv-2", `{"id":"srv-2","name":"one","namespaceId":"ns-1","routingPolicy":"WEIGHTED","records":[{"type":"A","ttl":5}]}`),
		kv(keyServices+"srv-3", `{"id":"srv-3","name":"many","namespaceId":"ns-1","routingPolicy":"MULTIVALUE","records":[{"type":"A","ttl":5}]}`),
		kv(keyServices+"srv-4", `{"id":"srv-4","name":"empty","namespaceId":"ns-1","routingPolicy":"MULTIVALUE","records":[{"type":"A","ttl":5}]}`),
		kv(keyServices+"srv-5", `{"id":"srv-5","name":"h","namespaceId":"ns-2"}`),
		kv(keyInstances+"srv-1/a", `{"id":"a","serviceId":"srv-1","health":"HEALTHY","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1","AWS_INSTANCE_PORT":"80"}}`),
		kv(keyInstances+"srv-1/b", `{"id":"b","serviceId":"srv-1","health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.2","AWS_INSTANCE_PORT":"81"}}`),
		kv(keyInstances+"srv-1/c", `{"id":"c","serviceId":"srv-1","health":"UNHEALTHY","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.3","AWS_INSTANCE_PORT":"82"}}`),
		kv(keyInstances+"srv-2/x", `{"id":"x","serviceId":"srv-2","health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.0.1.1"}}`),
		kv(keyInstances+"srv-2/y", `{"id":"y","serviceId":"srv-2","health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.0.1.2"}}`),
		kv(keyInstances+"srv-5/h1", `{"id":"h1","serviceId":"srv-5","health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.0.2.1"}}`),
	}
	for i := range 12 {
		kvs = append(kvs, kv(fmt.Sprintf("%ssrv-3/m%02d", keyInstances, i), fmt.Sprintf(`{"id":"m%02d","serviceId":"srv-3","health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.0.3.%d"}}`, i, i+1)))
	}
	slices.SortFunc(kvs, func(a, b store.KV) int {
		if a.Key < b.Key {
			return -1
		}
		return 1
	})
	return BuildSnapshot(7, kvs)
}

func ask(t *testing.T, zt *ZoneTable, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return zt.Answer(q)
}

func TestZoneTable(t *testing.T) {
	snap := testSnapshot()
	if eps := snap.Endpoints("corp.local", "WEB"); len(eps) != 2 || eps[0].Port != 80 {
		t.Fatalf("endpoints %+v", eps)
	}
	zt := BuildZoneTable(snap)

	a := ask(t, zt, "web.corp.local.", dns.TypeA)
	if a.Rcode != dns.RcodeSuccess || !a.Authoritative || len(a.Answer) != 2 {
		t.Fatalf("A: %v", a)
	}
	for _, rr := range a.Answer {
		if rr.Header().Ttl != 10 || rr.(*dns.A).A.String() == "10.0.0.3" {
			t.Fatalf("A record %v (unhealthy instances must not be answered)", rr)
		}
	}
	// Case-insensitive; the question keeps the asker's case.
	mixed := ask(t, zt, "WeB.CORP.local.", dns.TypeSRV)
	if len(mixed.Answer) != 2 || mixed.Question[0].Name != "WeB.CORP.local." || len(mixed.Extra) != 2 {
		t.Fatalf("SRV: %v", mixed)
	}
	srv := mixed.Answer[0].(*dns.SRV)
	if srv.Port != 80 || srv.Target != "a.web.corp.local." || srv.Hdr.Ttl != 20 {
		t.Fatalf("SRV record %v", srv)
	}
	if tgt := ask(t, zt, "a.web.corp.local.", dns.TypeA); len(tgt.Answer) != 1 {
		t.Fatalf("SRV target: %v", tgt)
	}
	nodata := ask(t, zt, "web.corp.local.", dns.TypeAAAA)
	if nodata.Rcode != dns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) != 1 || nodata.Ns[0].Header().Ttl != 30 {
		t.Fatalf("NODATA: %v", nodata)
	}
	for _, name := range []string{"nope.corp.local.", "empty.corp.local.", "x.a.web.corp.local."} {
		nx := ask(t, zt, name, dns.TypeA)
		if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 1 || nx.Ns[0].(*dns.SOA).Hdr.Name != "corp.local." {
			t.Fatalf("NXDOMAIN %s: %v", name, nx)
		}
	}
	if soa := ask(t, zt, "corp.local.", dns.TypeSOA); len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Serial != 7 {
		t.Fatalf("SOA: %v", soa)
	}
	if one := ask(t, zt, "one.corp.local.", dns.TypeA); len(one.Answer) != 1 {
		t.Fatalf("WEIGHTED answers one record: %v", one)
	}
	if many := ask(t, zt, "many.corp.local.", dns.TypeA); len(many.Answer) != maxMultivalue {
		t.Fatalf("MULTIVALUE answers at most 8: %d", len(many.Answer))
	}
	// HTTP namespaces and other names are not answered here.
	if m := ask(t, zt, "h.api.", dns.TypeA); m != nil {
		t.Fatalf("HTTP namespace answered: %v", m)
	}
	if m := ask(t, zt, "example.com.", dns.TypeA); m != nil {
		t.Fatalf("outside name answered: %v", m)
	}
}

// TestDNSServer serves over UDP and TCP, forwards outside names to an
// upstream and follows catalog changes.
func TestDNSServer(t *testing.T) {
	up := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(192, 0, 2, 1)}}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	up.NotifyStartedFunc = func() { close(started) }
	go up.ListenAndServe()
	<-started
	defer up.Shutdown()

	cat := NewCatalog(nil, nil)
	cat.Set(testSnapshot())
	d, err := NewDNSServer(cat, DNSConfig{Listen: "127.0.0.1:0", Upstreams: []string{up.PacketConn.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); d.Wait() }()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	query := func(netw, name string, qt uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		m.SetEdns0(1232, false)
		r, _, err := (&dns.Client{Net: netw, Timeout: 2 * time.Second}).Exchange(m, d.Addr())
		if err != nil {
			t.Fatalf("%s %s: %v", netw, name, err)
		}
		return r
	}
	if r := query("udp", "web.corp.local.", dns.TypeA); len(r.Answer) != 2 || r.IsEdns0() == nil {
		t.Fatalf("udp: %v", r)
	}
	if r := query("tcp", "web.corp.local.", dns.TypeSRV); len(r.Answer) != 2 {
		t.Fatalf("tcp: %v", r)
	}
	if r := query("udp", "example.com.", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("forwarded: %v", r)
	}
	// A new snapshot is served without a restart: without the namespace,
	// its names go upstream.
	cat.Set(BuildSnapshot(8, nil))
	deadline := time.Now().Add(2 * time.Second)
	for r := query("udp", "web.corp.local.", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1"; r = query("udp", "web.corp.local.", dns.TypeA) {
		if time.Now().After(deadline) {
			t.Fatal("the new snapshot was not served")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckInstance(t *testing.T) {
	svc := &Service{ID: "srv-1", Records: []DNSRecord{{Type: "A", TTL: 10}, {Type: "SRV", TTL: 10}}}
	for _, c := range []struct {
		attrs map[string]string
		ok    bool
	}{
		{map[string]string{AttrIPv4: "10.0.0.1", AttrPort: "80"}, true},
		{map[string]string{AttrIPv4: "10.0.0.1"}, false}, // SRV needs a port
		{map[string]string{AttrPort: "80"}, false},       // A needs an address
		{map[string]string{AttrIPv4: "10.0.0.300", AttrPort: "80"}, false},
		{map[string]string{AttrIPv4: "10.0.0.1", AttrPort: "70000"}, false},
		{map[string]string{AttrIPv4: "10.0.0.1", AttrPort: "80", AttrInitHealth: "HEALTHY"}, false}, // no custom health check
	} {
		inst := &Instance{Attributes: c.attrs}
		err := CheckInstance(svc, inst)
		if (err == nil) != c.ok || (err != nil && !errs.Is(err, errs.Invalid)) {
			t.Errorf("%v: %v", c.attrs, err)
		}
	}
	custom := &Service{ID: "srv-2", CustomHealth: true}
	inst := &Instance{Attributes: map[string]string{AttrInitHealth: "UNHEALTHY"}}
	if err := CheckInstance(custom, inst); err != nil || inst.Health != Unhealthy {
		t.Fatalf("init health: %v %s", err, inst.Health)
	}
	inst = &Instance{Attributes: map[string]string{}}
	if err := CheckInstance(custom, inst); err != nil || inst.Health != Healthy {
		t.Fatalf("custom default: %v %s", err, inst.Health)
	}
}

func ptrTo[T any](v T) *T { return &v }

const (
	clusterARN = "arn:aws:ecs:us-east-1:000000000000:cluster/default"
	registry   = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-abc"
)

func task(id, last, desiredStatus string, c ecsapi.Container) ecsapi.Task {
	return ecsapi.Task{TaskArn: ptrTo("arn:aws:ecs:us-east-1:000000000000:task/default/" + id), ClusterArn: ptrTo(clusterARN),
		Group: ptrTo("service:web"), LastStatus: ptrTo(last), DesiredStatus: ptrTo(desiredStatus), AvailabilityZone: ptrTo("us-east-1a"),
		TaskDefinitionArn: ptrTo("arn:aws:ecs:us-east-1:000000000000:task-definition/webfam:3"), ContainerInstanceArn: ptrTo("ci"),
		Containers: []ecsapi.Container{c}}
}

func TestDesiredInstances(t *testing.T) {
	bridge := ecsapi.Container{Name: ptrTo("app"), NetworkBindings: []ecsapi.NetworkBinding{{ContainerPort: ptrTo(int32(80)), HostPort: ptrTo(int32(32768))}}}
	awsvpc := ecsapi.Container{Name: ptrTo("app"), NetworkInterfaces: []ecsapi.NetworkInterface{{PrivateIpv4Address: ptrTo("172.20.0.5")}}}
	tasks := map[string]ecsapi.Task{
		"1": task("t1", "RUNNING", "RUNNING", bridge),
		"2": task("t2", "RUNNING", "STOPPED", bridge), // told to stop: deregistered at once
		"3": task("t3", "PENDING", "RUNNING", bridge),
		"4": task("t4", "RUNNING", "RUNNING", awsvpc),
	}
	svcs := map[string]ecsapi.Service{clusterARN + "/web": {Status: ptrTo("ACTIVE"),
		ServiceRegistries: []ecsapi.ServiceRegistry{{RegistryArn: ptrTo(registry), ContainerName: ptrTo("app"), ContainerPort: ptrTo(int32(80))}}}}
	got := desiredInstances(tasks, svcs, func(string) string { return "192.168.1.10" })
	slices.SortFunc(got, func(a, b desired) int {
		if a.id < b.id {
			return -1
		}
		return 1
	})
	if len(got) != 2 {
		t.Fatalf("desired %+v", got)
	}
	if d := got[0]; d.id != "t1" || d.serviceID != "srv-abc" || d.attrs[AttrIPv4] != "192.168.1.10" || d.attrs[AttrPort] != "32768" ||
		d.attrs["ECS_CLUSTER_NAME"] != "default" || d.attrs["ECS_SERVICE_NAME"] != "web" || d.attrs["ECS_TASK_DEFINITION_FAMILY"] != "webfam" {
		t.Fatalf("bridge %+v", d)
	}
	if d := got[1]; d.id != "t4" || d.attrs[AttrIPv4] != "172.20.0.5" || d.attrs[AttrPort] != "80" {
		t.Fatalf("awsvpc %+v", d)
	}
}

var (
	storeOnce sync.Once
	shared    store.Store
	storeErr  error
)

func testStore(t *testing.T) store.Store {
	t.Helper()
	storeOnce.Do(func() {
		dir, _ := os.MkdirTemp("", "berth-cloudmap-test")
		shared, storeErr = store.Open(context.Background(), store.Config{DataDir: dir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if _, err := shared.Txn(context.Background(), nil, store.DeletePrefix(prefix)); err != nil {
		t.Fatal(err)
	}
	return shared
}

type fakeFeed struct {
	tasks chan ecs.TaskChange
	svcs  chan ecs.ServiceChange
}

func (f *fakeFeed) WatchTasks(context.Context) <-chan ecs.TaskChange       { return f.tasks }
func (f *fakeFeed) WatchServices(context.Context) <-chan ecs.ServiceChange { return f.svcs }

// TestECSController registers a service's RUNNING task, deregisters it
// when it is told to stop, and leaves API-registered instances alone.
func TestECSController(t *testing.T) {
	st := testStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	ns := Namespace{ID: "ns-x", Name: "x.local", Type: TypeDNSPrivate, SOATTL: 15}
	if _, err := api.reg.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := api.reg.CreateService(ctx, Service{ID: "srv-abc", Name: "web", NamespaceID: "ns-x", Records: []DNSRecord{{Type: "SRV", TTL: 10}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.reg.RegisterInstance(ctx, Instance{ID: "manual", ServiceID: "srv-abc", Attributes: map[string]string{AttrIPv4: "10.9.9.9", AttrPort: "1"}}, CheckInstance); err != nil {
		t.Fatal(err)
	}
	feed := &fakeFeed{tasks: make(chan ecs.TaskChange, 10), svcs: make(chan ecs.ServiceChange, 10)}
	c := NewECSController(api.reg, feed, nil)
	c.HostIP = func(string) string { return "192.168.1.10" }
	c.Debounce = time.Millisecond
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	bridge := ecsapi.Container{Name: ptrTo("app"), NetworkBindings: []ecsapi.NetworkBinding{{ContainerPort: ptrTo(int32(80)), HostPort: ptrTo(int32(32768))}}}
	svc := ecsapi.Service{ClusterArn: ptrTo(clusterARN), ServiceName: ptrTo("web"), Status: ptrTo("ACTIVE"),
		ServiceRegistries: []ecsapi.ServiceRegistry{{RegistryArn: ptrTo(registry), ContainerName: ptrTo("app"), ContainerPort: ptrTo(int32(80))}}}
	feed.svcs <- ecs.ServiceChange{Kind: ecs.ChangeRelist}
	feed.svcs <- ecs.ServiceChange{Kind: ecs.ChangeUpsert, Service: svc}
	feed.svcs <- ecs.ServiceChange{Kind: ecs.ChangeSynced}
	feed.tasks <- ecs.TaskChange{Kind: ecs.ChangeRelist}
	feed.tasks <- ecs.TaskChange{Kind: ecs.ChangeUpsert, Task: task("t1", "RUNNING", "RUNNING", bridge)}
	feed.tasks <- ecs.TaskChange{Kind: ecs.ChangeSynced}
	waitFor := func(what string, ok func([]Instance) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			insts, _, err := api.reg.Instances(ctx, "srv-abc")
			if err == nil && ok(insts) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v %v", what, insts, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("registered", func(in []Instance) bool {
		return len(in) == 2 && in[1].ID == "t1" && in[1].Attributes[AttrPort] == "32768" && in[1].Owner != ""
	})
	feed.tasks <- ecs.TaskChange{Kind: ecs.ChangeUpsert, Task: task("t1", "RUNNING", "STOPPED", bridge)}
	waitFor("deregistered", func(in []Instance) bool { return len(in) == 1 && in[0].ID == "manual" })
}

func BenchmarkAnswer(b *testing.B) {
	zt := BuildZoneTable(testSnapshot())
	q := new(dns.Msg)
	q.SetQuestion("web.corp.local.", dns.TypeA)
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		m := zt.Answer(q)
		if _, err := m.PackBuffer(buf); err != nil {
			b.Fatal(err)
		}
	}
}
