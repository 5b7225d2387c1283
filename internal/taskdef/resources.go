package taskdef

import (
	"math"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// ParseCPU parses a task-level cpu value as ECS accepts it and returns CPU
// units (1024 to a vCPU): an integer number of units ("1024"), or vCPUs
// with the suffix "vCPU" in any case, with or without a space ("1 vCPU",
// "0.25vcpu", ".5 vCPU"). A vCPU value must come to a whole number of
// units. It does not check ranges. Errors are of kind errs.Invalid.
func ParseCPU(s string) (int, error) {
	return parseQuantity(s, "vcpu", 1024, "cpu")
}

// ParseMemory parses a task-level memory value as ECS accepts it and
// returns MiB: an integer number of MiB ("2048"), or GB (GiB, 1024 MiB)
// with the suffix "GB" in any case, with or without a space ("2 GB",
// "0.5GB"). A GB value must come to a whole number of MiB. It does not
// check ranges. Errors are of kind errs.Invalid.
func ParseMemory(s string) (int, error) {
	return parseQuantity(s, "gb", 1024, "memory")
}

// maxQuantity bounds parsed values so that sums over containers and
// conversions stay far from overflowing.
const maxQuantity = math.MaxInt32

func parseQuantity(s, suffix string, scale float64, what string) (int, error) {
	bad := errs.E(errs.Invalid, "invalid %s value %q", what, s)
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad
	}
	if isDigits(t) {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n > maxQuantity {
			return 0, bad
		}
		return int(n), nil
	}
	lower := strings.ToLower(t)
	if !strings.HasSuffix(lower, suffix) {
		return 0, bad
	}
	num := strings.TrimSpace(t[:len(t)-len(suffix)])
	if !isDecimal(num) {
		return 0, bad
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad
	}
	v := f * scale
	if v > maxQuantity || v != math.Trunc(v) {
		return 0, bad
	}
	return int(v), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isDecimal reports whether s is digits with at most one '.', and at least
// one digit: "1", "0.25", ".5", "2.".
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// Task size limits ECS documents for tasks that are not Fargate-compatible.
const (
	minEC2TaskCPU = 128    // 0.125 vCPU
	maxEC2TaskCPU = 196608 // 192 vCPU
)

// fargateSize is one row of Fargate's table of task sizes: a cpu value and
// the memory values allowed with it.
type fargateSize struct {
	cpu            int
	memMin, memMax int // MiB, inclusive
	memStep        int // MiB between allowed values, from memMin
	memExtra       []int
	linuxOnly      bool
}

// fargateSizes is the table in "Task size" of the ECS developer guide.
var fargateSizes = []fargateSize{
	{cpu: 256, memExtra: []int{512, 1024, 2048}, linuxOnly: true},
	{cpu: 512, memMin: 1024, memMax: 4096, memStep: 1024, linuxOnly: true},
	{cpu: 1024, memMin: 2048, memMax: 8192, memStep: 1024},
	{cpu: 2048, memMin: 4096, memMax: 16384, memStep: 1024},
	{cpu: 4096, memMin: 8192, memMax: 30720, memStep: 1024},
	{cpu: 8192, memMin: 16384, memMax: 61440, memStep: 4096, linuxOnly: true},
	{cpu: 16384, memMin: 32768, memMax: 122880, memStep: 8192, linuxOnly: true},
}

// FargateSizeOK reports whether cpu units and memory MiB are a Linux
// Fargate task size (RunTask checks a task's overridden size with it).
func FargateSizeOK(cpu, memory int) bool { return fargateSizeOK(cpu, memory, false) }

// fargateSizeOK reports whether cpu units and memory MiB are a task size
// Fargate offers for the operating system family (windows or not).
func fargateSizeOK(cpu, memory int, windows bool) bool {
	for _, s := range fargateSizes {
		if s.cpu != cpu {
			continue
		}
		if windows && s.linuxOnly {
			return false
		}
		for _, m := range s.memExtra {
			if m == memory {
				return true
			}
		}
		return s.memStep > 0 && memory >= s.memMin && memory <= s.memMax && (memory-s.memMin)%s.memStep == 0
	}
	return false
}
