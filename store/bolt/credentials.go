package bolt

import (
	"context"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/seal"
)

var bucketCreds = []byte("push_creds") // brand\0provider -> seal.Box(PushCredentials)

func (db *DB) loadCredentials(tx *bbolt.Tx) error {
	return tx.Bucket(bucketCreds).ForEach(func(k, v []byte) error {
		var c hotzone.PushCredentials
		// The bucket key is the additional data: a record copied to
		// another brand's key does not open.
		if err := db.box.Open(k, v, &c); err != nil {
			return fmt.Errorf("store: credentials: %w", err)
		}
		brandID, _ := splitKey(k)
		db.creds[hotzone.Lane{BrandID: brandID, Provider: c.Provider}] = &c
		return nil
	})
}

// PutCredentials implements hotzone.Credentials.
func (db *DB) PutCredentials(_ context.Context, brandID string, c hotzone.PushCredentials) error {
	if db.brandLock(brandID) == nil {
		return notFound("brand")
	}
	lane := hotzone.Lane{BrandID: brandID, Provider: c.Provider}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	c.Status, c.Error = hotzone.CredentialsOK, nil
	c.UpdatedAt = db.now().UTC()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		// Versions go on from the last upload, deleted or not: a verdict
		// on credentials deleted meanwhile must not reach these.
		c.Version = 1
		if old := db.creds[lane]; old != nil {
			c.Version = old.Version + 1
		} else if v := tx.Bucket(bucketMeta).Get(deletedCredsKey(lane)); len(v) == 8 {
			c.Version = int64(binary.BigEndian.Uint64(v)) + 1
		}
		return putCredentials(tx, db.box, lane, &c)
	})
	if err != nil {
		return err
	}
	db.creds[lane] = &c
	return nil
}

// deletedCredsKey is where the meta bucket keeps the version of a lane's
// deleted credentials.
func deletedCredsKey(lane hotzone.Lane) []byte {
	return joinKey("deleted_creds_version", lane.BrandID, string(lane.Provider))
}

func (db *DB) writeCredentials(lane hotzone.Lane, c *hotzone.PushCredentials) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error { return putCredentials(tx, db.box, lane, c) })
}

func putCredentials(tx *bbolt.Tx, box *seal.Box, lane hotzone.Lane, c *hotzone.PushCredentials) error {
	k := joinKey(lane.BrandID, string(lane.Provider))
	sealed, err := box.Seal(k, c)
	if err != nil {
		return fmt.Errorf("store: credentials: %w", err)
	}
	return tx.Bucket(bucketCreds).Put(k, sealed)
}

// DeleteCredentials implements hotzone.Credentials.
func (db *DB) DeleteCredentials(_ context.Context, brandID string, p hotzone.Provider) error {
	lane := hotzone.Lane{BrandID: brandID, Provider: p}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if old := db.creds[lane]; old != nil {
			if err := tx.Bucket(bucketMeta).Put(deletedCredsKey(lane), binary.BigEndian.AppendUint64(nil, uint64(old.Version))); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketCreds).Delete(joinKey(brandID, string(p)))
	})
	if err != nil {
		return fmt.Errorf("store: delete credentials: %w", err)
	}
	delete(db.creds, lane)
	return nil
}

var errNoCredentials = notFound("credentials")

// Credentials implements hotzone.Credentials from memory: a sender asks
// for every push.
func (db *DB) Credentials(_ context.Context, brandID string, p hotzone.Provider) (hotzone.PushCredentials, error) {
	db.credMu.Lock()
	defer db.credMu.Unlock()
	c := db.creds[hotzone.Lane{BrandID: brandID, Provider: p}]
	if c == nil {
		return hotzone.PushCredentials{}, errNoCredentials
	}
	return *c, nil
}

// MarkCredentials implements hotzone.Credentials.
func (db *DB) MarkCredentials(_ context.Context, brandID string, p hotzone.Provider, version int64, broken bool, reason string) error {
	lane := hotzone.Lane{BrandID: brandID, Provider: p}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	c := db.creds[lane]
	if c == nil || c.Version != version {
		return nil
	}
	next, changed := c.Marked(broken, reason)
	if !changed {
		return nil
	}
	if err := db.writeCredentials(lane, &next); err != nil {
		return err
	}
	db.creds[lane] = &next
	return nil
}
