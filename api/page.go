package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

type pageRequest struct {
	limit int
	after string // exclusive lower bound, decoded from the cursor
}

// cursorPrefix versions the opaque cursor so its form can change later.
const cursorPrefix = "v1:"

func readPage(c *gin.Context) (pageRequest, error) {
	pg := pageRequest{limit: 100}
	var errs fieldErrors
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs.add("limit", "must be an integer from 1 to 1000")
		}
		pg.limit = n
	}
	if v := c.Query("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		after, found := strings.CutPrefix(string(raw), cursorPrefix)
		if err != nil || !found || after == "" {
			errs.add("cursor", "is not a cursor this server issued")
		}
		pg.after = after
	}
	if len(errs) > 0 {
		return pg, &hotzone.ValidationError{Detail: "bad pagination parameters", Errors: errs}
	}
	return pg, nil
}

func encodeCursor(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + after))
}

// putStatus is a PUT's answer: 201 when it created the resource, 200
// when it replaced it.
func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
