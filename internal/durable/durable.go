// Package durable writes small files so that a crash at any moment leaves
// either their old content or their new content, never a torn file: the
// bytes go to a temporary file that is fsynced and renamed over the old
// one, and the directory is fsynced so the rename itself survives. Agent
// state, root credentials, the registry's server id, the log store's
// catalog and segment indexes, and the metric store's flush markers are
// written this way.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path's content with data (mode for a new file).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, so that files created, renamed or removed
// in it stay so after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
