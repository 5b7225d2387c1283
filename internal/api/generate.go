// Package api is the home of Berth's AWS wire shapes. models/ holds the
// official AWS API models (from botocore) stripped to facts; tools/apigen
// turns each JSON-protocol model into a package here: ecsapi, ecrapi,
// cloudtrailapi. The generated packages know the wire (structs, enums,
// error codes, validation, operation table) and nothing of Berth's domain;
// the per-service packages translate between the two.
//
// Regenerate with `go generate ./internal/api` after changing a model or
// the generator; see docs/api-generation.md.
package api

//go:generate go run ../../tools/apigen -models models -out .
