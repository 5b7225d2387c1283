package scproxy

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ReleaseStartupPages drops from this process's page tables the pages of its own executable that
// start-up touched: package initialisation of the whole berth binary, the runtime's walk over its
// type and itab tables, and the kernel's fault-around (up to 64 KiB mapped per fault). Only
// read-only mappings of the executable none of whose pages were ever written (no anonymous
// copies, per /proc/self/smaps) are advised, so nothing can be lost: a page used afterwards
// faults back in from the page cache. It returns the bytes advised. The pages stay cached and
// shared with every proxy of the same image; what falls is the resident size reported for this
// process (VmRSS), most of which was such pages.
func ReleaseStartupPages() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	type vma struct{ start, end uint64 }
	var candidates []vma
	var cur *vma
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			cur = nil
			if len(fields) < 6 || fields[5] != exe || strings.ContainsAny(fields[1], "w") {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil && end > start {
				cur = &vma{start, end}
			}
			continue
		}
		if cur != nil && fields[0] == "Anonymous:" && len(fields) >= 2 {
			if fields[1] == "0" {
				candidates = append(candidates, *cur)
			}
			cur = nil
		}
	}
	var total int64
	for _, v := range candidates {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(v.start), uintptr(v.end-v.start), syscall.MADV_DONTNEED); e == 0 {
			total += int64(v.end - v.start)
		}
	}
	return total
}
