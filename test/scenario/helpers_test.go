package scenario

import "github.com/berthdev/berth/internal/store"

func putOp(k, v string) store.Op { return store.Put(k, []byte(v)) }
func deleteOp(k string) store.Op { return store.Delete(k) }
