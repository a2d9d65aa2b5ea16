package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
)

// Body limits from the contract.
const (
	limitPing    = 16 << 10
	limitImport  = 32 << 20
	limitDefault = 1 << 20
)

// strict is how every request body is decoded: go-json-experiment matches
// member names case-sensitively and rejects duplicate names, invalid
// UTF-8 and trailing data by default; unknown members are rejected too.
// (encoding/json would match "LAT" to lat and keep the last duplicate.)
var strict = json.JoinOptions(json.RejectUnknownMembers(true))

// readBody checks the content type and reads at most limit bytes.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	return readBodyInto(c, limit, nil)
}

// readBodyInto is readBody appending to buf, so a hot path can reuse a
// pooled buffer.
func readBodyInto(c *gin.Context, limit int64, buf []byte) ([]byte, error) {
	if ct := headerValue(c.Request.Header, "Content-Type"); ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, newHTTPError(http.StatusUnsupportedMediaType, "the body must be JSON: Content-Type: application/json")
		}
	}
	if c.Request.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Request.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, tooLarge(limit)
		}
		if errors.Is(err, io.EOF) {
			// Closed once read to its end: the server then has nothing to
			// drain after the handler.
			_ = c.Request.Body.Close()
			return buf, nil
		}
		if err != nil {
			return nil, newHTTPError(http.StatusBadRequest, "could not read the body: "+err.Error())
		}
	}
}

func tooLarge(limit int64) error {
	return newHTTPError(http.StatusRequestEntityTooLarge, "the body is larger than "+strconv.FormatInt(limit>>10, 10)+" KiB")
}

// decodeBody reads and strictly decodes the request body into v.
func decodeBody(c *gin.Context, limit int64, v any) error {
	body, err := readBody(c, limit)
	if err != nil {
		return err
	}
	return decodeJSON(body, "", v)
}

// decodeJSON strictly decodes data into v; prefix is the JSON path of
// data inside the request, for field names in errors.
func decodeJSON(data []byte, prefix string, v any) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return &hotzone.ValidationError{Detail: "the body is empty; a JSON object is required", Errors: []hotzone.FieldError{{Field: orRoot(prefix), Message: "required"}}}
	}
	if err := json.Unmarshal(data, v, strict); err != nil {
		return decodeError(err, prefix)
	}
	return nil
}

// decodeError turns a decoder error into a 400 naming the field.
func decodeError(err error, prefix string) error {
	var (
		se  *json.SemanticError
		syn *jsontext.SyntacticError
	)
	switch {
	case errors.As(err, &syn):
		field := joinPath(prefix, pointerPath(syn.JSONPointer))
		msg := "malformed JSON"
		if syn.Err != nil {
			msg = "malformed JSON: " + syn.Err.Error()
		}
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			msg = "duplicate member"
		}
		return &hotzone.ValidationError{Detail: "the body is not valid JSON", Errors: []hotzone.FieldError{{Field: orRoot(field), Message: msg}}}
	case errors.As(err, &se):
		field := joinPath(prefix, pointerPath(se.JSONPointer))
		msg := "has the wrong type"
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			msg = "unknown field (names are case-sensitive)"
		case se.GoType != nil && se.JSONKind == '0':
			// A number where one belongs, that the Go type cannot hold
			// (1e400, or 1.5 for an integer).
			msg = "must be " + kindName(se.GoType.Kind().String()) + " in range"
		case se.GoType != nil && se.JSONKind != 0:
			msg = "must be " + kindName(se.GoType.Kind().String()) + ", not " + jsonKindName(se.JSONKind)
		case se.Err != nil:
			msg = se.Err.Error()
		}
		return &hotzone.ValidationError{Detail: "the body does not match the expected shape", Errors: []hotzone.FieldError{{Field: orRoot(field), Message: msg}}}
	}
	return &hotzone.ValidationError{Detail: "the body is not valid JSON", Errors: []hotzone.FieldError{{Field: orRoot(prefix), Message: err.Error()}}}
}

func kindName(goKind string) string {
	switch goKind {
	case "float64", "float32":
		return "a number"
	case "int", "int64", "int32":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + goKind
}

// jsonKindName names what the client sent ("an object", not "{").
func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return k.String()
}

// pointerPath turns a JSON Pointer (/pings/3/lon) into the contract's
// field path (pings[3].lon).
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && tok != "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func joinPath(prefix, rel string) string {
	switch {
	case prefix == "":
		return rel
	case rel == "":
		return prefix
	case rel[0] == '[':
		return prefix + rel
	}
	return prefix + "." + rel
}

func orRoot(field string) string {
	if field == "" {
		return "body"
	}
	return field
}

// fieldErrors collects validation failures of one request.
type fieldErrors []hotzone.FieldError

func (f *fieldErrors) add(field, msg string) {
	*f = append(*f, hotzone.FieldError{Field: field, Message: msg})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &hotzone.ValidationError{Detail: "the request is not valid", Errors: f}
}

// decodeHead reads a few members of a value and ignores the rest (names
// are still case-sensitive and duplicates still rejected).
func decodeHead(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

// headerValue is h.Get(name) for a name already in canonical form:
// Header.Get canonicalises its argument on every call, and these are
// read on every request.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
