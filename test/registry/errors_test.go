package registry

import (
	"encoding/json"
	"errors"
	"io"
)

func errorAs(err error, target any) bool { return errors.As(err, target) }

func readAll(rc interface {
	Read([]byte) (int, error)
	Close() error
}) (int64, error) {
	defer rc.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := rc.Read(buf)
		n += int64(k)
		if err != nil {
			if err.Error() == "EOF" {
				return n, nil
			}
			return n, err
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
