package awsproto

import (
	"errors"
	"net/http"

	"github.com/berthdev/berth/internal/errs"
)

// ErrorMap maps a service's domain errors (*errs.Error) to its AWS error
// codes: by the error's reason first, then by its kind. Errors that are
// not domain errors are left to the generic mapping (nil).
type ErrorMap struct {
	Reasons map[string]string    // errs reason -> AWS code
	Kinds   map[errs.Kind]string // errs kind -> AWS code
	// ServerCode answers Unavailable, Internal and unclassified errors
	// with HTTP 500 and "Server exception: <message>".
	ServerCode string
}

// Map implements Service.MapError.
func (m ErrorMap) Map(err error) *Error {
	var de *errs.Error
	if !errors.As(err, &de) {
		return nil
	}
	msg := errs.MessageOf(err)
	if code, ok := m.Reasons[errs.ReasonOf(err)]; ok {
		return &Error{Code: code, Message: msg}
	}
	switch k := errs.KindOf(err); k {
	case errs.Unavailable, errs.Internal, errs.Other:
		if m.ServerCode != "" {
			return &Error{Code: m.ServerCode, Message: "Server exception: " + msg, Status: http.StatusInternalServerError}
		}
	default:
		if code, ok := m.Kinds[k]; ok {
			return &Error{Code: code, Message: msg}
		}
	}
	return nil
}
