package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

var bucketCreds = []byte("push_creds") // brand\0provider -> seal.Box(PushCredentials)

// Credential statuses.
const (
	CredentialsOK     = "ok"
	CredentialsBroken = "broken"
)

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
	if db.brand(brandID) == nil {
		return notFound("brand")
	}
	lane := hotzone.Lane{BrandID: brandID, Provider: c.Provider}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	c.Status, c.Error = CredentialsOK, nil
	if old := db.creds[lane]; old != nil {
		c.Version = old.Version + 1
	} else {
		c.Version = 1
	}
	c.UpdatedAt = db.now().UTC()
	if err := db.writeCredentials(lane, &c); err != nil {
		return err
	}
	db.creds[lane] = &c
	return nil
}

func (db *DB) writeCredentials(lane hotzone.Lane, c *hotzone.PushCredentials) error {
	k := joinKey(lane.BrandID, string(lane.Provider))
	sealed, err := db.box.Seal(k, c)
	if err != nil {
		return fmt.Errorf("store: credentials: %w", err)
	}
	return db.bolt.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketCreds).Put(k, sealed) })
}

// DeleteCredentials implements hotzone.Credentials.
func (db *DB) DeleteCredentials(_ context.Context, brandID string, p hotzone.Provider) error {
	lane := hotzone.Lane{BrandID: brandID, Provider: p}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
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
	next := *c
	if broken {
		next.Status, next.Error = CredentialsBroken, &reason
	} else {
		next.Status, next.Error = CredentialsOK, nil
	}
	if next.Status == c.Status {
		return nil
	}
	if err := db.writeCredentials(lane, &next); err != nil {
		return err
	}
	db.creds[lane] = &next
	return nil
}
