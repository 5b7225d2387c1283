package ecs

import (
	"strconv"
	"strings"
)

// instanceTypeResources derives what an EC2 instance of type t registers
// with ECS when RegisterContainerInstance gives no totalResources: 1024 CPU
// units per vCPU, and the instance's memory in MiB less the share the
// kernel and the ECS agent keep (ECS registers MemTotal, about 5% under
// the nominal size: a t3.medium's 4096 MiB register as about 3,900).
//
// The table covers the burstable families by name and the general purpose
// (m), compute (c) and memory (r) families of generations 4 to 8 by their
// rule: a "large" has 2 vCPUs, an "xlarge" 4, an "Nxlarge" 4N, a "medium"
// (Graviton only) 1; memory per vCPU is 4 GiB (m), 2 GiB (c) or 8 GiB (r).
func instanceTypeResources(t string) (cpu, memMiB int, ok bool) {
	family, size, found := strings.Cut(strings.ToLower(strings.TrimSpace(t)), ".")
	if !found {
		return 0, 0, false
	}
	var vcpu int
	var gib float64
	if b, ok := burstable[family]; ok {
		s, ok := b[size]
		if !ok {
			return 0, 0, false
		}
		vcpu, gib = s.vcpu, s.gib
	} else {
		perVCPU, ok := gibPerVCPU(family)
		if !ok {
			return 0, 0, false
		}
		switch {
		case size == "medium":
			vcpu = 1
		case size == "large":
			vcpu = 2
		case size == "xlarge":
			vcpu = 4
		case strings.HasSuffix(size, "xlarge"):
			n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge"))
			if err != nil || n < 2 || n > 48 {
				return 0, 0, false
			}
			vcpu = 4 * n
		default:
			return 0, 0, false
		}
		gib = float64(vcpu) * perVCPU
	}
	nominal := int(gib * 1024)
	return vcpu * 1024, nominal - nominal/20, true
}

// gibPerVCPU is the memory per vCPU of the m, c and r families
// (generations 4 to 8, with their a/g/i/d/n suffixes: m5, m6i, c7g, r6gd).
func gibPerVCPU(family string) (float64, bool) {
	if len(family) < 2 || family[1] < '4' || family[1] > '8' {
		return 0, false
	}
	for _, r := range family[2:] {
		if !strings.ContainsRune("adgin", r) {
			return 0, false
		}
	}
	switch family[0] {
	case 'm':
		return 4, true
	case 'c':
		return 2, true
	case 'r':
		return 8, true
	}
	return 0, false
}

type typeSize struct {
	vcpu int
	gib  float64
}

// burstable holds the T families, whose sizes do not follow the rule.
var burstable = func() map[string]map[string]typeSize {
	t3 := map[string]typeSize{
		"nano": {2, 0.5}, "micro": {2, 1}, "small": {2, 2}, "medium": {2, 4},
		"large": {2, 8}, "xlarge": {4, 16}, "2xlarge": {8, 32},
	}
	t2 := map[string]typeSize{
		"nano": {1, 0.5}, "micro": {1, 1}, "small": {1, 2}, "medium": {2, 4},
		"large": {2, 8}, "xlarge": {4, 16}, "2xlarge": {8, 32},
	}
	return map[string]map[string]typeSize{"t2": t2, "t3": t3, "t3a": t3, "t4g": t3}
}()
