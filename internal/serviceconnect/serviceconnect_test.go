package serviceconnect

import "testing"

func TestVIP(t *testing.T) {
	for n, want := range map[int]string{1: "127.255.0.1", 255: "127.255.0.255", 256: "127.255.1.0", 65534: "127.255.255.254"} {
		got, err := VIP(n)
		if err != nil || got != want {
			t.Errorf("VIP(%d) = %q, %v; want %q", n, got, err, want)
		}
	}
	for _, n := range []int{0, -1, 65535} {
		if _, err := VIP(n); err == nil {
			t.Errorf("VIP(%d): no error", n)
		}
	}
}
