package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// script is a Lua script run by its SHA-1 (EVALSHA), falling back to
// EVAL, which also caches it, on a node that does not know it yet (a
// new or restarted node, a promoted replica). valkey-go's own ExecMulti
// loads the script on every node before each batch: a round trip to
// every node per call, measured at a third of our round trips.
type script struct {
	src, sha string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// scriptCmd builds the EVALSHA, or with eval the EVAL, of one call.
func (db *DB) scriptCmd(s *script, keys, args []string, eval bool) valkey.Completed {
	if eval {
		return db.c.B().Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	}
	return db.c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// noScript tells whether a node answered that it does not know a script.
func noScript(r valkey.ValkeyResult) bool {
	err := r.Error()
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// runScripts runs calls of one script in one pipelined batch, and again
// by EVAL those a node did not know.
func (db *DB) runScripts(ctx context.Context, s *script, calls []valkey.LuaExec) []valkey.ValkeyResult {
	cmds := make([]valkey.Completed, len(calls))
	for i, c := range calls {
		cmds[i] = db.scriptCmd(s, c.Keys, c.Args, false)
	}
	rs := db.c.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range rs {
		if noScript(r) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		cmds = cmds[:0]
		for _, i := range again {
			cmds = append(cmds, db.scriptCmd(s, calls[i].Keys, calls[i].Args, true))
		}
		for j, r := range db.c.DoMulti(ctx, cmds...) {
			rs[again[j]] = r
		}
	}
	return rs
}
