package hotzone

import "errors"

// Sentinel errors shared by every package; api maps them to statuses in
// one place.
var (
	// ErrNotFound: the resource does not exist in the caller's brand.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request collides with the current state (a second
	// live event at a store, say).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the key is valid but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: no key, or a key the server does not know.
	ErrUnauthorized = errors.New("unauthorized")
)

// FieldError is one invalid part of a request, named by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError is a request that decoded but is not valid; it carries
// one entry per bad field.
type ValidationError struct {
	Detail string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	if len(e.Errors) > 0 {
		return e.Errors[0].Field + ": " + e.Errors[0].Message
	}
	return "invalid request"
}

// Invalid builds a ValidationError for a single field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Detail: "the request is not valid", Errors: []FieldError{{Field: field, Message: message}}}
}

// ErrUnavailable: the storage backend cannot answer just now (a cluster
// failing over, a node out of reach); the same request may succeed in a
// moment. api answers it 503 with Retry-After.
var ErrUnavailable = errors.New("storage unavailable")
