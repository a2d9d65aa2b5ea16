package redis

import (
	"strconv"
	"strings"
	"time"

	"github.com/hotzone/hotzone"
)

// A decide call's new log entries form a run: their ids are one fresh
// id's first runPrefix characters (its time, counter and 51 random
// bits) followed by the entry's place in the run in runDigits digits of
// the ids' own alphabet. The ids of a run sort in the order they were
// made, after every id made before the run and before every id made
// after it (within a node, as NewID's are), and no other id starts with
// the run's prefix. So the log's indexes ({S}:li and {S}:le:EVENT) hold
// one member per run, "PREFIX!COUNT", rather than one per entry: "!"
// sorts below every digit, so the member sorts where the run's first id
// would, and a reader expands it (runEntries, entriesLua). Under a
// fan-out, two index members per device were a sixth of what a decision
// cost the primaries and replicas. Members written before runs existed
// are entry ids themselves, and read as runs of one.
const (
	runPrefix = 23
	runDigits = 3
	// maxRun is how many entries a run can number.
	maxRun = 1 << (5 * runDigits)
)

// A decide call's group of devices (at most considerBatch) is one run.
const _ = uint(maxRun - considerBatch)

// idRun hands out the ids of one run.
type idRun struct {
	prefix string
	n      int
}

func newIDRun(now time.Time) *idRun {
	return &idRun{prefix: hotzone.NewID(now)[:runPrefix]}
}

// next is the run's next id.
func (r *idRun) next() string {
	id := runID(r.prefix, r.n)
	r.n++
	return id
}

// member is the run's index member: every id it handed out.
func (r *idRun) member() string { return r.prefix + "!" + strconv.Itoa(r.n) }

// runID is the id at place k of the run with prefix.
func runID(prefix string, k int) string {
	var b [runPrefix + runDigits]byte
	n := copy(b[:], prefix)
	for i := runDigits - 1; i >= 0; i-- {
		b[n+i] = hotzone.IDAlphabet[k&31]
		k >>= 5
	}
	return string(b[:n+runDigits])
}

// runEntries is the ids an index member stands for, newest first: a
// run's, or the member itself when it is an entry id. A member that
// looks like a run but is malformed stands for itself (and reads as an
// entry that is gone).
func runEntries(member string) []string {
	prefix, count, ok := strings.Cut(member, "!")
	if !ok {
		return []string{member}
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 || n > maxRun || len(prefix) != runPrefix {
		return []string{member}
	}
	out := make([]string, n)
	for k := range n {
		out[n-1-k] = runID(prefix, k)
	}
	return out
}

// entriesLua defines entriesOf(member): the ids an index member stands
// for, oldest first (see runEntries; its digits are runDigits, three).
var entriesLua = `
local idDigits = '` + hotzone.IDAlphabet + `'
local function entriesOf(m)
  local bang = string.find(m, '!', 1, true)
  if not bang then return {m} end
  local pre, n = string.sub(m, 1, bang - 1), tonumber(string.sub(m, bang + 1))
  if not n or n < 0 or n > ` + strconv.Itoa(maxRun) + ` or #pre ~= ` + strconv.Itoa(runPrefix) + ` then return {m} end
  local out = {}
  for k = 0, n - 1 do
    local a, b, c = math.floor(k / 1024) % 32, math.floor(k / 32) % 32, k % 32
    out[#out+1] = pre .. string.sub(idDigits, a + 1, a + 1) .. string.sub(idDigits, b + 1, b + 1) .. string.sub(idDigits, c + 1, c + 1)
  end
  return out
end
`
