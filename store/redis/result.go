package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// result is a command's answer whose errors say whether the cluster was
// out of reach (hotzone.ErrUnavailable, a 503 the client may retry) or
// refused the command (a bug of ours, a 500).
type result struct{ r valkey.ValkeyResult }

// classify wraps errors a failover or an unreachable node causes with
// hotzone.ErrUnavailable; a nil answer passes as it is.
func classify(err error) error {
	if err == nil || valkey.IsValkeyNil(err) {
		return err
	}
	if ve, ok := valkey.IsValkeyErr(err); ok {
		msg := ve.Error()
		for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "READONLY", "MASTERDOWN", "MOVED", "ASK", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: %w", hotzone.ErrUnavailable, err)
			}
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Timeouts, refused or broken connections, a closed client.
	return fmt.Errorf("%w: %w", hotzone.ErrUnavailable, err)
}

func (r result) Error() error { return classify(r.r.Error()) }

func (r result) ToString() (string, error) {
	v, err := r.r.ToString()
	return v, classify(err)
}

func (r result) AsStrMap() (map[string]string, error) {
	v, err := r.r.AsStrMap()
	return v, classify(err)
}

func (r result) ToArray() ([]valkey.ValkeyMessage, error) {
	v, err := r.r.ToArray()
	return v, classify(err)
}

func (r result) AsStrSlice() ([]string, error) {
	v, err := r.r.AsStrSlice()
	return v, classify(err)
}

func (r result) AsInt64() (int64, error) {
	v, err := r.r.AsInt64()
	return v, classify(err)
}

func (r result) AsBool() (bool, error) {
	v, err := r.r.AsBool()
	return v, classify(err)
}

func (r result) AsIntSlice() ([]int64, error) {
	v, err := r.r.AsIntSlice()
	return v, classify(err)
}

func (r result) AsZScores() ([]valkey.ZScore, error) {
	v, err := r.r.AsZScores()
	return v, classify(err)
}

// results wraps a batch's answers.
func results(rs []valkey.ValkeyResult) []result {
	out := make([]result, len(rs))
	for i, r := range rs {
		out[i] = result{r}
	}
	return out
}
