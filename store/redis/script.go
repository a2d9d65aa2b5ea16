package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"time"

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

// execWaiting runs calls of a script as execMulti does, except that,
// when Options.WaitReplicas asks for it, each call whose wait is true
// (every call, for a nil wait) goes on a connection of its own with a
// WAIT behind it, both in one round trip: the call's writes are then on
// that many replicas (or the WAIT came back short; see wait) when it
// answers, at no round trip more than the call's own. The other calls
// share one pipelined batch.
func (db *DB) execWaiting(ctx context.Context, s *script, calls []valkey.LuaExec, wait []bool) ([]result, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	ctx, cancel := db.opCtx(ctx)
	defer cancel()
	rs := make([]valkey.ValkeyResult, len(calls))
	var plain, waited []int
	for i, c := range calls {
		if (wait == nil || wait[i]) && db.waits(c.Keys[0]) {
			waited = append(waited, i)
		} else {
			plain = append(plain, i)
		}
	}
	var wg sync.WaitGroup
	for k, i := range waited {
		if k == len(waited)-1 && len(plain) == 0 {
			// With no batch to send meanwhile, the last runs here: a
			// call alone (a ping's decision or presence) needs no
			// goroutine.
			rs[i] = db.waitedCall(ctx, s, calls[i])
			break
		}
		wg.Go(func() { rs[i] = db.waitedCall(ctx, s, calls[i]) })
	}
	if len(plain) > 0 {
		sub := make([]valkey.LuaExec, len(plain))
		for j, i := range plain {
			sub[j] = calls[i]
		}
		start := time.Now()
		prs := db.runScripts(ctx, s, sub)
		db.stats.took(start, firstError(prs))
		for j, i := range plain {
			rs[i] = prs[j]
		}
	}
	wg.Wait()
	return results(rs), classify(firstError(rs))
}

// execWaited runs one call of a script with a WAIT behind it in the
// same round trip (see execWaiting).
func (db *DB) execWaited(ctx context.Context, s *script, keys, args []string) result {
	// A single call's answer carries its own error.
	rs, _ := db.execWaiting(ctx, s, []valkey.LuaExec{{Keys: keys, Args: args}}, nil)
	return rs[0]
}

// waitedCall runs one call with its WAIT (see runWaiting). A connection
// of one's own does not follow a redirect (a slot moved, the client not
// caught up): then the shared client, which does, runs it, and a WAIT
// follows where the write went.
func (db *DB) waitedCall(ctx context.Context, s *script, c valkey.LuaExec) valkey.ValkeyResult {
	r := db.runWaiting(ctx, s, c)
	if !redirected(r) {
		return r
	}
	start := time.Now()
	r = db.runScripts(ctx, s, []valkey.LuaExec{c})[0]
	db.stats.took(start, r.Error())
	if r.Error() == nil {
		db.wait(ctx, c.Keys[0])
	}
	return r
}

// redirected tells whether a node answered MOVED or ASK: the slot is
// served elsewhere, and the call did not run.
func redirected(r valkey.ValkeyResult) bool {
	ve, ok := valkey.IsValkeyErr(r.Error())
	if !ok {
		return false
	}
	_, moved := ve.IsMoved()
	_, ask := ve.IsAsk()
	return moved || ask
}

// runWaiting runs one call and a WAIT on a connection of its own, again
// by EVAL if the node did not know the script.
func (db *DB) runWaiting(ctx context.Context, s *script, call valkey.LuaExec) valkey.ValkeyResult {
	var r valkey.ValkeyResult
	ran := false
	err := db.dedicated(ctx, func(c valkey.DedicatedClient) error {
		ran = true
		rs := c.DoMulti(ctx, db.scriptCmd(s, call.Keys, call.Args, false), db.waitCmd(c))
		if noScript(rs[0]) {
			rs = c.DoMulti(ctx, db.scriptCmd(s, call.Keys, call.Args, true), db.waitCmd(c))
		}
		r = rs[0]
		if err := r.Error(); err != nil {
			return err
		}
		// The WAIT's own failure leaves the call's answer standing: its
		// writes are on the primary, as after a short WAIT.
		return db.waited(call.Keys[0], rs[1])
	})
	if !ran {
		return valkey.NewErrorResult(err)
	}
	return r
}
