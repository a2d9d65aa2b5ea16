package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// A brand's catalog lives in one slot (tag {P:b:BRAND}): its writes are
// few and each is atomic there. They are read-modify-writes checked at
// the write: the script applies them only if what was read is still
// there, and the caller reads and tries again otherwise.

// casHash sets (or, for an empty new value, deletes) fields of one hash
// if every field still holds what the caller read ("" for absent).
// ARGV: field, expected, new, field, expected, new, …; answers 1, or 0
// when anything changed meanwhile.
var casHash = newScript(`
for i = 1, #ARGV, 3 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i+1] then return 0 end
end
for i = 1, #ARGV, 3 do
  if ARGV[i+2] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2]) end
end
return 1`)

// casString is casHash for a string key.
var casString = newScript(`
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`)

// casRetries bounds how often a read-modify-write is tried: each loss
// means another writer changed the same thing in that instant.
const casRetries = 100

var errContended = errors.New("redis: too much contention on one record")

// tx runs commands of one slot as a MULTI/EXEC transaction.
func (db *DB) tx(ctx context.Context, cmds ...valkey.Completed) error {
	all := make([]valkey.Completed, 0, len(cmds)+2)
	all = append(all, db.c.B().Multi().Build())
	all = append(all, cmds...)
	all = append(all, db.c.B().Exec().Build())
	_, err := db.doMulti(ctx, all)
	return err
}

// EnsureOperatorKey makes the operator key usable (see hotzone.Keys).
// With several nodes starting at once, one generated key wins and the
// others load it.
func (db *DB) EnsureOperatorKey(ctx context.Context, fromEnv string) (string, error) {
	k := db.gkey("operator")
	generated := ""
	if fromEnv != "" {
		h := hotzone.HashKey(fromEnv)
		if err := db.do(ctx, db.cmd("SET", []string{k}, hex.EncodeToString(h[:]))).Error(); err != nil {
			return "", fmt.Errorf("redis: operator key: %w", err)
		}
	} else {
		key := hotzone.NewKey(hotzone.KindOperator)
		h := hotzone.HashKey(key)
		ok, err := db.do(ctx, db.cmd("SET", []string{k}, hex.EncodeToString(h[:]), "NX")).ToString()
		switch {
		case err == nil && ok == "OK":
			generated = key
		case err != nil && !valkey.IsValkeyNil(err):
			return "", fmt.Errorf("redis: operator key: %w", err)
		}
	}
	if _, err := db.doMulti(ctx, []valkey.Completed{
		db.cmd("HINCRBY", []string{db.gkey("ver")}, "", "1"),
		db.c.B().Publish().Channel(db.channel()).Message(msgGlobal).Build(),
	}); err != nil {
		return "", fmt.Errorf("redis: operator key: %w", err)
	}
	return generated, db.reloadGlobal(ctx)
}

// Authenticate finds a key by its secret's hash, in the view.
func (db *DB) Authenticate(_ context.Context, secret string) (*hotzone.Key, error) {
	return db.keys.Authenticate(secret)
}

// KeyActive tells whether a key is still in the view.
func (db *DB) KeyActive(_ context.Context, k *hotzone.Key) (bool, error) {
	return db.keys.Active(k), nil
}

// TouchKey notes a manager key's use; written behind with positions.
func (db *DB) TouchKey(_ context.Context, k *hotzone.Key) error {
	db.keys.Touch(k, db.now())
	return nil
}

// CreateBrand creates a brand, its policy and its two keys in one
// transaction.
func (db *DB) CreateBrand(ctx context.Context, name string) (hotzone.Brand, string, string, error) {
	now := db.now().UTC()
	br := hotzone.Brand{ID: hotzone.NewID(now), Name: name, CreatedAt: now}
	adminKey, appKey := hotzone.NewKey(hotzone.KindAdmin), hotzone.NewKey(hotzone.KindApp)
	admin := hotzone.Key{Hash: hotzone.HashKey(adminKey), Kind: hotzone.KindAdmin, BrandID: br.ID, CreatedAt: now}
	app := hotzone.Key{Hash: hotzone.HashKey(appKey), Kind: hotzone.KindApp, BrandID: br.ID, CreatedAt: now}
	brJSON, _ := json.Marshal(br)
	polJSON, _ := json.Marshal(hotzone.DefaultPolicy())
	adminJSON, _ := json.Marshal(admin)
	appJSON, _ := json.Marshal(app)
	if err := db.tx(ctx,
		db.cmd("SET", []string{db.bkey(br.ID, "brand")}, string(brJSON)),
		db.cmd("SET", []string{db.bkey(br.ID, "policy")}, string(polJSON)),
		db.cmd("HSET", []string{db.bkey(br.ID, "keys")}, hex.EncodeToString(admin.Hash[:]), string(adminJSON),
			hex.EncodeToString(app.Hash[:]), string(appJSON)),
	); err != nil {
		return hotzone.Brand{}, "", "", fmt.Errorf("redis: create brand: %w", err)
	}
	if err := db.do(ctx, db.cmd("SADD", []string{db.gkey("brands")}, br.ID)).Error(); err != nil {
		return hotzone.Brand{}, "", "", fmt.Errorf("redis: create brand: %w", err)
	}
	if err := db.bump(ctx, br.ID, partAll); err != nil {
		return hotzone.Brand{}, "", "", err
	}
	return br, adminKey, appKey, nil
}

// Brand returns a brand from the view.
func (db *DB) Brand(_ context.Context, id string) (hotzone.Brand, error) {
	br, ok := db.brands.Brand(id)
	if !ok {
		return hotzone.Brand{}, notFound("brand")
	}
	return br, nil
}

// Policy returns a brand's policy from the view.
func (db *DB) Policy(_ context.Context, brandID string) (hotzone.Policy, error) {
	p, ok := db.brands.Policy(brandID)
	if !ok {
		return hotzone.Policy{}, notFound("brand")
	}
	return p, nil
}

// UpdatePolicy applies fn to the stored policy and writes the result if
// nobody wrote in between; otherwise it reads again and reapplies fn.
func (db *DB) UpdatePolicy(ctx context.Context, brandID string, fn func(*hotzone.Policy) error) (hotzone.Policy, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return hotzone.Policy{}, notFound("brand")
	}
	k := db.bkey(brandID, "policy")
	for range casRetries {
		raw, err := str(db.do(ctx, db.cmd("GET", []string{k})))
		if err != nil {
			return hotzone.Policy{}, fmt.Errorf("redis: read policy: %w", err)
		}
		p := hotzone.DefaultPolicy()
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				return hotzone.Policy{}, fmt.Errorf("redis: policy: %w", err)
			}
		}
		if err := fn(&p); err != nil {
			return hotzone.Policy{}, err
		}
		next, _ := json.Marshal(p)
		ok, err := db.exec(ctx, casString, []string{k}, []string{raw, string(next)}).AsBool()
		if err != nil {
			return hotzone.Policy{}, fmt.Errorf("redis: write policy: %w", err)
		}
		if ok {
			return p, db.bump(ctx, brandID, partCatalog)
		}
	}
	return hotzone.Policy{}, errContended
}

// CreateManagerKey issues a key for one store; the script refuses a
// store deleted meanwhile.
func (db *DB) CreateManagerKey(ctx context.Context, brandID, storeID string, label *string) (hotzone.Key, string, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return hotzone.Key{}, "", notFound("brand")
	}
	now := db.now().UTC()
	secret := hotzone.NewKey(hotzone.KindManager)
	k := hotzone.Key{Hash: hotzone.HashKey(secret), Kind: hotzone.KindManager, BrandID: brandID, StoreID: storeID,
		ID: hotzone.NewID(now), Label: label, CreatedAt: now}
	raw, _ := json.Marshal(k)
	ok, err := db.exec(ctx, createKey, []string{db.bkey(brandID, "stores"), db.bkey(brandID, "keys")},
		[]string{storeID, hex.EncodeToString(k.Hash[:]), string(raw)}).AsBool()
	if err != nil {
		return hotzone.Key{}, "", fmt.Errorf("redis: create manager key: %w", err)
	}
	if !ok {
		return hotzone.Key{}, "", notFound("store")
	}
	return k, secret, db.bump(ctx, brandID, partKeys)
}

var createKey = newScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`)

// ManagerKeys lists a store's manager keys, oldest first, with their
// last use as this node saw it if that is later than the stored one.
func (db *DB) ManagerKeys(ctx context.Context, brandID, storeID string) ([]hotzone.Key, error) {
	if !db.stores.Has(brandID, storeID) {
		return nil, notFound("store")
	}
	all, err := db.brandKeys(ctx, brandID)
	if err != nil {
		return nil, err
	}
	var out []hotzone.Key
	for _, k := range all {
		if k.Kind != hotzone.KindManager || k.StoreID != storeID {
			continue
		}
		if v, ok := db.keys.Get(k.Hash); ok && v.LastUsedAt.After(k.LastUsedAt) {
			k.LastUsedAt = v.LastUsedAt
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b hotzone.Key) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// brandKeys reads a brand's keys with their stored JSON.
func (db *DB) brandKeys(ctx context.Context, brandID string) ([]hotzone.Key, error) {
	m, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.bkey(brandID, "keys")})))
	if err != nil {
		return nil, fmt.Errorf("redis: keys: %w", err)
	}
	out := make([]hotzone.Key, 0, len(m))
	for h, raw := range m {
		var k hotzone.Key
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			return nil, fmt.Errorf("redis: key: %w", err)
		}
		b, _ := hex.DecodeString(h)
		copy(k.Hash[:], b)
		out = append(out, k)
	}
	return out, nil
}

// DeleteManagerKey revokes a manager key; every node's view drops it
// within the poll, this one before returning.
func (db *DB) DeleteManagerKey(ctx context.Context, brandID, keyID string) error {
	if _, ok := db.brands.Brand(brandID); !ok {
		return notFound("brand")
	}
	n, err := db.exec(ctx, deleteKey, []string{db.bkey(brandID, "keys")}, []string{keyID}).AsInt64()
	if err != nil {
		return fmt.Errorf("redis: delete manager key: %w", err)
	}
	if n == 0 {
		return notFound("manager key")
	}
	return db.bump(ctx, brandID, partKeys)
}

var deleteKey = newScript(`
local ks = redis.call('HGETALL', KEYS[1])
for i = 1, #ks, 2 do
  local k = cjson.decode(ks[i+1])
  if k.kind == 'manager' and k.id == ARGV[1] then
    redis.call('HDEL', KEYS[1], ks[i])
    return 1
  end
end
return 0`)

// flushTouches writes the keys' last uses held behind.
func (db *DB) flushTouches(ctx context.Context) error {
	touched := db.keys.TakeTouched()
	if len(touched) == 0 {
		return nil
	}
	calls := make([]valkey.LuaExec, 0, len(touched))
	for _, k := range touched {
		calls = append(calls, valkey.LuaExec{Keys: []string{db.bkey(k.BrandID, "keys")},
			Args: []string{hex.EncodeToString(k.Hash[:]), k.LastUsedAt.UTC().Format(time.RFC3339Nano)}})
	}
	if _, err := db.execMulti(ctx, touchKey, calls); err != nil {
		db.keys.Retouch(touched)
		return fmt.Errorf("redis: write key uses: %w", err)
	}
	return nil
}

var touchKey = newScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local k = cjson.decode(v)
k.last_used_at = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(k))
return 1`)

// PutStore creates or replaces a store.
func (db *DB) PutStore(ctx context.Context, st hotzone.Store) (hotzone.Store, bool, error) {
	out, created, err := db.putStores(ctx, st.BrandID, []hotzone.Store{st})
	if err != nil {
		return hotzone.Store{}, false, err
	}
	return out[0], created == 1, nil
}

// ImportStores creates or replaces many stores in one script: all or
// none.
func (db *DB) ImportStores(ctx context.Context, brandID string, sts []hotzone.Store) (int, int, error) {
	_, created, err := db.putStores(ctx, brandID, sts)
	return created, len(sts) - created, err
}

func (db *DB) putStores(ctx context.Context, brandID string, sts []hotzone.Store) ([]hotzone.Store, int, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, 0, notFound("brand")
	}
	k := db.bkey(brandID, "stores")
	ids := make([]string, len(sts))
	for i, st := range sts {
		ids[i] = st.ID
	}
	for range casRetries {
		now := db.now().UTC()
		olds, err := strs(db.do(ctx, db.cmd("HMGET", []string{k}, ids...)))
		if err != nil {
			return nil, 0, fmt.Errorf("redis: read stores: %w", err)
		}
		out := make([]hotzone.Store, len(sts))
		args := make([]string, 0, 3*len(sts))
		created := 0
		seen := map[string]int{}
		for i, st := range sts {
			old := olds[i]
			createdAt := now
			if j, ok := seen[st.ID]; ok {
				// The same id twice in one import: the later one wins
				// and keeps the first one's creation.
				createdAt = out[j].CreatedAt
			} else if old != "" {
				var prev hotzone.Store
				if err := json.Unmarshal([]byte(old), &prev); err != nil {
					return nil, 0, fmt.Errorf("redis: store %s: %w", st.ID, err)
				}
				createdAt = prev.CreatedAt
			} else {
				created++
			}
			st = st.Stored(brandID, createdAt, now)
			seen[st.ID] = i
			raw, err := json.Marshal(st)
			if err != nil {
				return nil, 0, err
			}
			args = append(args, st.ID, old, string(raw))
			out[i] = st
		}
		ok, err := db.exec(ctx, casHashOnce, []string{k}, args).AsBool()
		if err != nil {
			return nil, 0, fmt.Errorf("redis: write stores: %w", err)
		}
		if ok {
			return out, created, db.bump(ctx, brandID, partStores)
		}
	}
	return nil, 0, errContended
}

// casHashOnce is casHash where a field may come more than once (an
// import naming one store twice): each field is checked against what
// was read before any was written.
var casHashOnce = newScript(`
local seen = {}
for i = 1, #ARGV, 3 do
  if not seen[ARGV[i]] then
    if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i+1] then return 0 end
    seen[ARGV[i]] = true
  end
end
for i = 1, #ARGV, 3 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2]) end
return 1`)

// Store returns a store from the view.
func (db *DB) Store(_ context.Context, brandID, storeID string) (hotzone.Store, error) {
	st, ok := db.stores.Get(brandID, storeID)
	if !ok {
		return hotzone.Store{}, notFound("store")
	}
	return st, nil
}

// Stores lists a page of stores from the view.
func (db *DB) Stores(_ context.Context, brandID string, q hotzone.StoreQuery) ([]hotzone.Store, bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, false, notFound("brand")
	}
	out, more := db.stores.List(brandID, q)
	return out, more, nil
}

// FencesAt matches a point against the view's fences.
func (db *DB) FencesAt(_ context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error) {
	return db.stores.Match(brandID, p, dst), nil
}

// DeleteStore ends the store's live event, then removes the store and
// its manager keys in one script, which refuses (and this tries again)
// if an event went live in between.
func (db *DB) DeleteStore(ctx context.Context, brandID, storeID string) error {
	if _, ok := db.brands.Brand(brandID); !ok {
		return notFound("brand")
	}
	keys := []string{db.bkey(brandID, "stores"), db.bkey(brandID, "keys"), db.bkey(brandID, "live")}
	for range casRetries {
		n, err := db.exec(ctx, deleteStore, keys, []string{storeID}).AsInt64()
		if err != nil {
			return fmt.Errorf("redis: delete store: %w", err)
		}
		switch n {
		case 0:
			return notFound("store")
		case 1:
			return db.bump(ctx, brandID, partStores, partKeys)
		}
		evID, err := str(db.do(ctx, db.cmd("HGET", []string{keys[2]}, storeID)))
		if err != nil {
			return fmt.Errorf("redis: delete store: %w", err)
		}
		if evID != "" {
			if _, _, err := db.EndEvent(ctx, brandID, evID, db.now().UTC()); err != nil && !errors.Is(err, hotzone.ErrNotFound) {
				return err
			}
		}
	}
	return errContended
}

var deleteStore = newScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 2 end
redis.call('HDEL', KEYS[1], ARGV[1])
local ks = redis.call('HGETALL', KEYS[2])
for i = 1, #ks, 2 do
  local k = cjson.decode(ks[i+1])
  if k.kind == 'manager' and k.store_id == ARGV[1] then redis.call('HDEL', KEYS[2], ks[i]) end
end
return 1`)

// credAD binds sealed credentials to their brand and provider.
func credAD(brandID string, p hotzone.Provider) []byte { return []byte(brandID + "\x00" + string(p)) }

// PutCredentials stores a brand's credentials with a version above any
// it had, deleted ones included.
func (db *DB) PutCredentials(ctx context.Context, brandID string, c hotzone.PushCredentials) error {
	if _, ok := db.brands.Brand(brandID); !ok {
		return notFound("brand")
	}
	k := db.bkey(brandID, "creds")
	for range casRetries {
		rs, err := db.doMulti(ctx, []valkey.Completed{db.cmd("HGET", []string{k}, string(c.Provider)),
			db.cmd("HGET", []string{k}, "deleted:"+string(c.Provider))})
		if err != nil {
			return fmt.Errorf("redis: read credentials: %w", err)
		}
		old, _ := str(rs[0])
		delVer, _ := rs[1].AsInt64()
		next := c
		next.Status, next.Error = hotzone.CredentialsOK, nil
		next.UpdatedAt = db.now().UTC()
		next.Version = delVer + 1
		if old != "" {
			var prev hotzone.PushCredentials
			if err := db.box.Open(credAD(brandID, c.Provider), []byte(old), &prev); err != nil {
				return fmt.Errorf("redis: credentials: %w", err)
			}
			next.Version = max(next.Version, prev.Version+1)
		}
		sealed, err := db.box.Seal(credAD(brandID, c.Provider), &next)
		if err != nil {
			return fmt.Errorf("redis: credentials: %w", err)
		}
		ok, err := db.exec(ctx, casHash, []string{k}, []string{string(c.Provider), old, string(sealed)}).AsBool()
		if err != nil {
			return fmt.Errorf("redis: write credentials: %w", err)
		}
		if ok {
			return db.bump(ctx, brandID, partCreds)
		}
	}
	return errContended
}

// DeleteCredentials removes a brand's credentials for a provider,
// remembering their version so the next upload's is higher.
func (db *DB) DeleteCredentials(ctx context.Context, brandID string, p hotzone.Provider) error {
	k := db.bkey(brandID, "creds")
	for range casRetries {
		old, err := str(db.do(ctx, db.cmd("HGET", []string{k}, string(p))))
		if err != nil {
			return fmt.Errorf("redis: read credentials: %w", err)
		}
		if old == "" {
			return nil
		}
		var prev hotzone.PushCredentials
		if err := db.box.Open(credAD(brandID, p), []byte(old), &prev); err != nil {
			return fmt.Errorf("redis: credentials: %w", err)
		}
		delOld, err := str(db.do(ctx, db.cmd("HGET", []string{k}, "deleted:"+string(p))))
		if err != nil {
			return fmt.Errorf("redis: read credentials: %w", err)
		}
		ok, err := db.exec(ctx, casHash, []string{k}, []string{string(p), old, "",
			"deleted:" + string(p), delOld, fmt.Sprint(prev.Version)}).AsBool()
		if err != nil {
			return fmt.Errorf("redis: delete credentials: %w", err)
		}
		if ok {
			return db.bump(ctx, brandID, partCreds)
		}
	}
	return errContended
}

var errNoCredentials = notFound("credentials")

// Credentials returns a brand's credentials from the view.
func (db *DB) Credentials(_ context.Context, brandID string, p hotzone.Provider) (hotzone.PushCredentials, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	st := db.known[brandID]
	if st == nil || st.creds[p] == nil {
		return hotzone.PushCredentials{}, errNoCredentials
	}
	return *st.creds[p], nil
}

// MarkCredentials records a provider's verdict on one version of the
// credentials; the write is checked against the stored version.
func (db *DB) MarkCredentials(ctx context.Context, brandID string, p hotzone.Provider, version int64, broken bool, reason string) error {
	k := db.bkey(brandID, "creds")
	for range casRetries {
		old, err := str(db.do(ctx, db.cmd("HGET", []string{k}, string(p))))
		if err != nil || old == "" {
			return err
		}
		var c hotzone.PushCredentials
		if err := db.box.Open(credAD(brandID, p), []byte(old), &c); err != nil {
			return fmt.Errorf("redis: credentials: %w", err)
		}
		if c.Version != version {
			return nil
		}
		next, changed := c.Marked(broken, reason)
		if !changed {
			return nil
		}
		sealed, err := db.box.Seal(credAD(brandID, p), &next)
		if err != nil {
			return fmt.Errorf("redis: credentials: %w", err)
		}
		ok, err := db.exec(ctx, casHash, []string{k}, []string{string(p), old, string(sealed)}).AsBool()
		if err != nil {
			return fmt.Errorf("redis: mark credentials: %w", err)
		}
		if ok {
			return db.bump(ctx, brandID, partCreds)
		}
	}
	return errContended
}

// FencesNear answers the brand's stores nearest p from the view.
func (db *DB) FencesNear(_ context.Context, brandID string, p geo.Point, limit int) ([]hotzone.NearStore, float64, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, 0, notFound("brand")
	}
	near, left := db.stores.Near(brandID, p, limit)
	return near, left, nil
}

// FencesAround implements hotzone.Stores from the view.
func (db *DB) FencesAround(_ context.Context, brandID string, p geo.Point, m float64, dst []hotzone.FenceDistance) ([]hotzone.FenceDistance, error) {
	return db.stores.Around(brandID, p, m, dst), nil
}

// VisitsAt implements hotzone.Stores from the view.
func (db *DB) VisitsAt(_ context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error) {
	return db.stores.VisitsAt(brandID, p, dst), nil
}

// BrandIDs implements hotzone.Brands from the view.
func (db *DB) BrandIDs(context.Context) ([]string, error) { return db.brands.IDs(), nil }
