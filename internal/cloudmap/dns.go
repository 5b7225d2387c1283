package cloudmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNSConfig configures the DNS server.
type DNSConfig struct {
	// Listen is the UDP and TCP address, e.g. 127.0.0.1:8053 ("host:0"
	// picks a free port, the same for both).
	Listen string
	// Upstreams receive the queries for names outside every private DNS
	// namespace ("ip:port"). Nil reads the host's /etc/resolv.conf; an
	// empty non-nil slice refuses such queries.
	Upstreams []string
	Log       *slog.Logger
}

// maxMultivalue is how many records a MULTIVALUE answer carries at most,
// as Route 53 answers (a random eight when there are more).
const maxMultivalue = 8

// DNSServer answers the A, AAAA, SRV, CNAME and SOA records of private
// DNS namespaces from the catalog's snapshot, with healthy instances only,
// and forwards other names to the upstreams.
type DNSServer struct {
	cat       *Catalog
	log       *slog.Logger
	upstreams []string
	client    *dns.Client
	table     atomic.Pointer[ZoneTable]
	addr      string
	wg        sync.WaitGroup
	mu        sync.Mutex               // guards servers and ctx
	servers   map[string][]*dns.Server // by listen address asked
	ctx       context.Context          // Start's; canceled after Close
}

// ZoneTable is the DNS view of one snapshot, built once per change so a
// query is two map lookups.
type ZoneTable struct {
	zones map[string]*zone   // apex FQDN (lower case) -> zone
	names map[string]*rrsets // owner FQDN (lower case) -> records
}

type zone struct {
	apex string
	soa  *dns.SOA
}

type rrsets struct {
	zone     *zone
	a, aaaa  []dns.RR
	srv      []dns.RR
	srvExtra []dns.RR // A/AAAA of the SRV targets
	cname    []dns.RR
	weighted bool
}

// BuildZoneTable makes the DNS view of a snapshot: for every private (or
// public) DNS namespace an SOA at its apex, and per service with healthy
// instances <service>.<namespace> with its A, AAAA, CNAME and SRV records
// (SRV targets are <instance-id>.<service>.<namespace>, which get A and
// AAAA records too), each with the service's configured TTL.
func BuildZoneTable(s *Snapshot) *ZoneTable {
	t := &ZoneTable{zones: map[string]*zone{}, names: map[string]*rrsets{}}
	for _, ns := range s.Namespaces {
		if !ns.IsDNS() {
			continue
		}
		apex := dns.Fqdn(dnsName(ns.Name))
		z := &zone{apex: apex, soa: &dns.SOA{
			Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: uint32(ns.SOATTL)},
			Ns:  "ns1.berth." + apex, Mbox: "hostmaster.berth." + apex,
			Serial: uint32(s.Revision), Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: 86400,
		}}
		t.zones[apex] = z
		t.names[apex] = &rrsets{zone: z}
		for _, sv := range ns.Services {
			if len(sv.Records) == 0 {
				continue
			}
			owner := dns.Fqdn(dnsName(sv.Name)) + apex
			rs := &rrsets{zone: z, weighted: sv.RoutingPolicy == "WEIGHTED"}
			for _, rec := range sv.Records {
				ttl := uint32(rec.TTL)
				for _, in := range sv.Instances {
					if !in.Healthy {
						continue
					}
					target := dns.Fqdn(strings.ToLower(in.ID)) + owner
					switch rec.Type {
					case "A":
						if in.IPv4.IsValid() {
							rs.a = append(rs.a, &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: net.IP(in.IPv4.AsSlice())})
						}
					case "AAAA":
						if in.IPv6.IsValid() {
							rs.aaaa = append(rs.aaaa, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, ttl), AAAA: net.IP(in.IPv6.AsSlice())})
						}
					case "CNAME":
						if c := in.Attributes[AttrCNAME]; c != "" {
							rs.cname = append(rs.cname, &dns.CNAME{Hdr: hdr(owner, dns.TypeCNAME, ttl), Target: dns.Fqdn(c)})
						}
					case "SRV":
						rs.srv = append(rs.srv, &dns.SRV{Hdr: hdr(owner, dns.TypeSRV, ttl), Priority: 1, Weight: 1, Port: in.Port, Target: target})
						ts := t.names[target]
						if ts == nil {
							ts = &rrsets{zone: z}
							t.names[target] = ts
						}
						if in.IPv4.IsValid() {
							a := &dns.A{Hdr: hdr(target, dns.TypeA, ttl), A: net.IP(in.IPv4.AsSlice())}
							ts.a = append(ts.a, a)
							rs.srvExtra = append(rs.srvExtra, a)
						}
						if in.IPv6.IsValid() {
							a := &dns.AAAA{Hdr: hdr(target, dns.TypeAAAA, ttl), AAAA: net.IP(in.IPv6.AsSlice())}
							ts.aaaa = append(ts.aaaa, a)
							rs.srvExtra = append(rs.srvExtra, a)
						}
					}
				}
			}
			if len(rs.a)+len(rs.aaaa)+len(rs.srv)+len(rs.cname) > 0 {
				t.names[owner] = rs
			}
		}
	}
	return t
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// zoneOf finds the namespace zone holding name (lower-case FQDN).
func (t *ZoneTable) zoneOf(name string) *zone {
	for i := 0; i < len(name); {
		if z := t.zones[name[i:]]; z != nil {
			return z
		}
		j := strings.IndexByte(name[i:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return nil
}

// hasBelow says whether some name under name exists (an empty
// non-terminal answers NODATA, not NXDOMAIN).
func (t *ZoneTable) hasBelow(name string) bool {
	suffix := "." + name
	for n := range t.names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// pick returns the records a query gets: all of them up to eight
// (MULTIVALUE, a random eight beyond), or one at random (WEIGHTED).
func pick(rrs []dns.RR, weighted bool) []dns.RR {
	if weighted && len(rrs) > 1 {
		return []dns.RR{rrs[rand.IntN(len(rrs))]}
	}
	if len(rrs) <= maxMultivalue {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	copy(out, rrs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:maxMultivalue]
}

// Answer builds the reply to r from table t, or returns nil when the
// name is in no namespace (to be forwarded).
func (t *ZoneTable) Answer(r *dns.Msg) *dns.Msg {
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	z := t.zoneOf(name)
	if z == nil {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	rs := t.names[name]
	if rs == nil {
		if !t.hasBelow(name) {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{z.soa}
		return m
	}
	if q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY {
		if len(rs.cname) > 0 && q.Qtype != dns.TypeCNAME {
			m.Answer = pick(rs.cname, true)
		} else {
			switch q.Qtype {
			case dns.TypeA:
				m.Answer = pick(rs.a, rs.weighted)
			case dns.TypeAAAA:
				m.Answer = pick(rs.aaaa, rs.weighted)
			case dns.TypeCNAME:
				m.Answer = pick(rs.cname, true)
			case dns.TypeSRV:
				m.Answer = pick(rs.srv, rs.weighted)
				if len(m.Answer) == len(rs.srv) {
					m.Extra = rs.srvExtra
				} else {
					m.Extra = extraFor(m.Answer, rs.srvExtra)
				}
			case dns.TypeSOA:
				if name == z.apex {
					m.Answer = []dns.RR{z.soa}
				}
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{z.soa}
	}
	return m
}

func extraFor(srvs, extra []dns.RR) []dns.RR {
	var out []dns.RR
	for _, s := range srvs {
		target := s.(*dns.SRV).Target
		for _, e := range extra {
			if e.Header().Name == target {
				out = append(out, e)
			}
		}
	}
	return out
}

// NewDNSServer returns a DNS server answering from cat; Start starts it.
func NewDNSServer(cat *Catalog, cfg DNSConfig) (*DNSServer, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ups := cfg.Upstreams
	if ups == nil {
		ups = hostResolvers("/etc/resolv.conf")
	}
	d := &DNSServer{cat: cat, log: log, upstreams: ups, addr: cfg.Listen,
		client: &dns.Client{Net: "udp", Timeout: 2 * time.Second}}
	d.table.Store(BuildZoneTable(cat.Current()))
	return d, nil
}

// hostResolvers reads the nameservers of a resolv.conf.
func hostResolvers(path string) []string {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return []string{}
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}

// Start listens (UDP and TCP on the same port) and serves until ctx ends
// or Close. It follows the catalog from then on.
func (d *DNSServer) Start(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	addr, err := d.listen(d.addr)
	if err != nil {
		return err
	}
	d.addr = addr
	sub := d.cat.Subscribe()
	d.table.Store(BuildZoneTable(d.cat.Current()))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-ctx.Done():
				d.Close()
				return
			case <-sub:
				d.table.Store(BuildZoneTable(d.cat.Current()))
			}
		}
	}()
	d.log.Info("cloud map dns listening", "addr", d.addr, "upstreams", d.upstreams)
	return nil
}

// Listen serves on one more address (UDP and TCP), e.g. the Docker bridge
// gateway's port 53 for task containers; an address already served is
// not an error. Start must have been called.
func (d *DNSServer) Listen(addr string) error {
	d.mu.Lock()
	_, ok := d.servers[addr]
	d.mu.Unlock()
	if ok {
		return nil
	}
	got, err := d.listen(addr)
	if err == nil {
		d.log.Info("cloud map dns listening", "addr", got)
	}
	return err
}

func (d *DNSServer) listen(addr string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil || d.ctx.Err() != nil {
		return "", errors.New("dns server not running")
	}
	if _, ok := d.servers[addr]; ok {
		return addr, nil
	}
	pc, ln, err := listenBoth(addr)
	if err != nil {
		return "", err
	}
	h := dns.HandlerFunc(d.ServeDNS)
	pair := []*dns.Server{{PacketConn: pc, Handler: h, UDPSize: 4096},
		{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}}
	if d.servers == nil {
		d.servers = map[string][]*dns.Server{}
	}
	d.servers[addr] = pair
	ctx := d.ctx
	for _, s := range pair {
		// Wait until it serves, so that a Close right after cannot find
		// it not started yet (and leave it serving).
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := s.ActivateAndServe(); err != nil && ctx.Err() == nil {
				d.log.Debug("dns server stopped", "err", err)
			}
		}()
		<-started
	}
	return pc.LocalAddr().String(), nil
}

func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns listen address %q: %w", addr, err)
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns listen udp %s: %w", addr, err)
		}
		// A burst of queries must not overflow the socket's buffer (the
		// default ~200 KB holds a few hundred datagrams); nsd sets 1 MB+.
		if uc, ok := pc.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("dns listen tcp %s: %w", addr, lastErr)
}

// Addr is the address served (UDP and TCP).
func (d *DNSServer) Addr() string { return d.addr }

// Close stops serving on every address.
func (d *DNSServer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errsOut []error
	for _, pair := range d.servers {
		for _, s := range pair {
			if err := s.Shutdown(); err != nil && !strings.Contains(err.Error(), "not started") {
				errsOut = append(errsOut, err)
			}
		}
	}
	d.servers = nil
	if d.ctx != nil {
		d.ctx = canceled
	}
	return errors.Join(errsOut...)
}

var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Wait waits for the server's goroutines after Close or ctx's end.
func (d *DNSServer) Wait() { d.wg.Wait() }

// ServeDNS answers one query.
func (d *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	m := d.table.Load().Answer(r)
	if m == nil {
		m = d.forward(r)
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		if m.IsEdns0() == nil {
			m.SetEdns0(uint16(min(size, 4096)), false)
		}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// forward asks the upstreams, in order, for a name outside the
// namespaces; without upstreams it refuses.
func (d *DNSServer) forward(r *dns.Msg) *dns.Msg {
	if len(d.upstreams) == 0 {
		m := new(dns.Msg)
		return m.SetRcode(r, dns.RcodeRefused)
	}
	for _, up := range d.upstreams {
		resp, _, err := d.client.Exchange(r, up)
		if err == nil && resp != nil {
			if resp.Truncated {
				c := *d.client
				c.Net = "tcp"
				if r2, _, err := c.Exchange(r, up); err == nil && r2 != nil {
					resp = r2
				}
			}
			resp.Id = r.Id
			return resp
		}
	}
	m := new(dns.Msg)
	return m.SetRcode(r, dns.RcodeServerFailure)
}
