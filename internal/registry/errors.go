package registry

import (
	"net/http"

	"github.com/berthdev/berth/internal/errs"
)

// Reasons of the registry's domain errors. Each maps to one OCI
// distribution error code (see ociCode) and, in package ecr, to one ECR
// exception.
const (
	ReasonNameUnknown         = "registry.name_unknown"
	ReasonNameInvalid         = "registry.name_invalid"
	ReasonRepoExists          = "registry.repository_exists"
	ReasonRepoNotEmpty        = "registry.repository_not_empty"
	ReasonManifestUnknown     = "registry.manifest_unknown"
	ReasonManifestInvalid     = "registry.manifest_invalid"
	ReasonManifestBlobUnknown = "registry.manifest_blob_unknown"
	ReasonBlobUnknown         = "registry.blob_unknown"
	ReasonDigestInvalid       = "registry.digest_invalid"
	ReasonSizeInvalid         = "registry.size_invalid"
	ReasonUploadUnknown       = "registry.upload_unknown"
	ReasonUploadInvalid       = "registry.upload_invalid"
	ReasonRangeInvalid        = "registry.range_invalid"
	ReasonTagInvalid          = "registry.tag_invalid"
	ReasonTagImmutable        = "registry.tag_immutable"
	ReasonImageExists         = "registry.image_exists"
	ReasonLifecycleNotFound   = "registry.lifecycle_policy_not_found"
	ReasonLifecycleInvalid    = "registry.lifecycle_policy_invalid"
	ReasonPolicyNotFound      = "registry.repository_policy_not_found"
	ReasonPreviewNotFound     = "registry.lifecycle_preview_not_found"
	ReasonUnauthorized        = "registry.unauthorized"
	ReasonDenied              = "registry.denied"
	ReasonUnsupported         = "registry.unsupported"
	// ReasonReferencedByIndex: the manifest is a child of an index in
	// its repository (ECR's ImageReferencedByManifestList).
	ReasonReferencedByIndex = "registry.referenced_by_manifest_list"
	// ReasonBlobInUse: a manifest of the repository references the blob.
	ReasonBlobInUse = "registry.blob_in_use"
	// ReasonManifestTooLarge: the manifest exceeds MaxManifestSize.
	ReasonManifestTooLarge = "registry.manifest_too_large"
)

// ociError is one entry of the distribution spec's error body.
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// ociCode maps a domain error to the distribution spec's code and status.
func ociCode(err error) (string, int) {
	switch errs.ReasonOf(err) {
	case ReasonNameUnknown:
		return "NAME_UNKNOWN", http.StatusNotFound
	case ReasonNameInvalid:
		return "NAME_INVALID", http.StatusBadRequest
	case ReasonManifestUnknown:
		return "MANIFEST_UNKNOWN", http.StatusNotFound
	case ReasonManifestInvalid:
		return "MANIFEST_INVALID", http.StatusBadRequest
	case ReasonManifestTooLarge:
		// The spec: a registry refusing a manifest for its size answers
		// 413; MANIFEST_INVALID is the code for a manifest refused
		// (SIZE_INVALID means a length that does not match the content).
		return "MANIFEST_INVALID", http.StatusRequestEntityTooLarge
	case ReasonManifestBlobUnknown:
		return "MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest
	case ReasonBlobUnknown:
		return "BLOB_UNKNOWN", http.StatusNotFound
	case ReasonDigestInvalid:
		return "DIGEST_INVALID", http.StatusBadRequest
	case ReasonSizeInvalid:
		return "SIZE_INVALID", http.StatusBadRequest
	case ReasonUploadUnknown:
		return "BLOB_UPLOAD_UNKNOWN", http.StatusNotFound
	case ReasonUploadInvalid:
		return "BLOB_UPLOAD_INVALID", http.StatusBadRequest
	case ReasonRangeInvalid:
		return "BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable
	case ReasonTagInvalid:
		return "TAG_INVALID", http.StatusBadRequest
	case ReasonTagImmutable:
		// ECR answers a re-tag of an immutable tag over the Docker API
		// with TAG_INVALID; Docker prints the message.
		return "TAG_INVALID", http.StatusBadRequest
	case ReasonUnauthorized:
		return "UNAUTHORIZED", http.StatusUnauthorized
	case ReasonDenied:
		return "DENIED", http.StatusForbidden
	case ReasonUnsupported, ReasonReferencedByIndex, ReasonBlobInUse:
		// Refusing a delete: the spec lets a registry answer 405
		// UNSUPPORTED to a DELETE, which clients (and the conformance
		// suite) accept.
		return "UNSUPPORTED", http.StatusMethodNotAllowed
	}
	switch errs.KindOf(err) {
	case errs.NotFound:
		return "NOT_FOUND", http.StatusNotFound // not a spec code; never expected
	case errs.Invalid:
		return "UNSUPPORTED", http.StatusBadRequest
	case errs.Unsupported:
		return "UNSUPPORTED", http.StatusMethodNotAllowed
	case errs.Conflict:
		return "DENIED", http.StatusConflict
	case errs.Throttled:
		return "TOOMANYREQUESTS", http.StatusTooManyRequests
	case errs.Unavailable:
		return "UNAVAILABLE", http.StatusServiceUnavailable
	}
	return "UNKNOWN", http.StatusInternalServerError
}
