package serviceconnect

import "testing"

func TestAssignRedirectPorts(t *testing.T) {
	tc := TaskConfig{
		Inbound: []Inbound{{ListenPort: 15200, AppPort: 80}},
		Outbound: []Outbound{
			{DNSName: "a", Port: 80, VIP: "127.255.0.1"},
			{DNSName: "b", Port: 80, VIP: "127.255.0.2"},
			{DNSName: "c", Port: 8080, VIP: "127.255.0.3"},
		},
	}
	AssignRedirectPorts(&tc, map[int]bool{15201: true, 15203: true})
	want := []int{15202, 15204, 15205} // 15200 inbound, 15201 and 15203 taken
	for i, o := range tc.Outbound {
		if o.ListenPort != want[i] {
			t.Fatalf("alias %s: port %d, want %d (%+v)", o.DNSName, o.ListenPort, want[i], tc.Outbound)
		}
	}
	// The same input gives the same ports (an agent that re-attaches).
	again := TaskConfig{Inbound: tc.Inbound, Outbound: []Outbound{{DNSName: "a"}, {DNSName: "b"}, {DNSName: "c"}}}
	AssignRedirectPorts(&again, map[int]bool{15201: true, 15203: true})
	for i := range again.Outbound {
		if again.Outbound[i].ListenPort != tc.Outbound[i].ListenPort {
			t.Fatalf("not deterministic: %+v vs %+v", again.Outbound, tc.Outbound)
		}
	}
}

func TestAssignRedirectPortsRunsOut(t *testing.T) {
	taken := map[int]bool{}
	for p := RedirectBase; p <= 65534; p++ {
		taken[p] = true
	}
	tc := TaskConfig{Outbound: []Outbound{{DNSName: "a"}, {DNSName: "b"}}}
	AssignRedirectPorts(&tc, taken)
	if tc.Outbound[0].ListenPort != 65535 || tc.Outbound[1].ListenPort != 0 {
		t.Fatalf("%+v", tc.Outbound)
	}
}
