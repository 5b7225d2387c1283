//go:build !linux

package scproxy

// ReleaseStartupPages does nothing outside Linux.
func ReleaseStartupPages() int64 { return 0 }
