package ecs

import "testing"

func TestInstanceTypeResources(t *testing.T) {
	for _, c := range []struct {
		typ      string
		cpu, mem int
		ok       bool
	}{
		{"t3.medium", 2048, 3892, true},
		{"t2.micro", 1024, 973, true},
		{"m5.large", 2048, 7783, true},
		{"m6i.2xlarge", 8192, 31130, true},
		{"c5.xlarge", 4096, 7783, true},
		{"c7g.medium", 1024, 1946, true},
		{"r6gd.4xlarge", 16384, 124519, true},
		{"c5.9xlarge", 36864, 70042, true},
		{"x1.16xlarge", 0, 0, false},
		{"m5.huge", 0, 0, false},
		{"m3.large", 0, 0, false},
		{"t3.4xlarge", 0, 0, false},
		{"", 0, 0, false},
	} {
		cpu, mem, ok := instanceTypeResources(c.typ)
		if cpu != c.cpu || mem != c.mem || ok != c.ok {
			t.Errorf("%q: got %d CPU, %d MiB, %v; want %d, %d, %v", c.typ, cpu, mem, ok, c.cpu, c.mem, c.ok)
		}
	}
}
