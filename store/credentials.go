package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

var bucketCreds = []byte("push_creds") // brand\0provider -> nonce + AES-GCM(PushCredentials)

// ErrNoSecretKey: credentials were stored or read without a server key.
var ErrNoSecretKey = errors.New("store: no secret key to encrypt push credentials")

// Credential statuses.
const (
	CredentialsOK     = "ok"
	CredentialsBroken = "broken"
)

func (db *DB) aead() (cipher.AEAD, error) {
	if len(db.secret) != 32 {
		return nil, ErrNoSecretKey
	}
	block, err := aes.NewCipher(db.secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts a record; the bucket key is the additional data, so a
// record copied to another brand's key does not decrypt.
func (db *DB) seal(k []byte, v any) ([]byte, error) {
	aead, err := db.aead()
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, k), nil
}

func (db *DB) open(k, sealed []byte, v any) error {
	aead, err := db.aead()
	if err != nil {
		return err
	}
	if len(sealed) < aead.NonceSize() {
		return errors.New("store: sealed record too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], k)
	if err != nil {
		return fmt.Errorf("store: decrypt credentials (wrong HOTZONE_SECRET_KEY?): %w", err)
	}
	return json.Unmarshal(plain, v)
}

func (db *DB) loadCredentials(tx *bolt.Tx) error {
	return tx.Bucket(bucketCreds).ForEach(func(k, v []byte) error {
		var c hotzone.PushCredentials
		if err := db.open(k, v, &c); err != nil {
			return err
		}
		brandID, _ := splitKey(k)
		db.creds[hotzone.Lane{BrandID: brandID, Provider: c.Provider}] = &c
		return nil
	})
}

// PutCredentials stores (replacing) a brand's credentials for their
// provider, status ok, with a new version.
func (db *DB) PutCredentials(brandID string, c hotzone.PushCredentials) error {
	if db.brand(brandID) == nil {
		return hotzone.ErrNotFound
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
	sealed, err := db.seal(k, c)
	if err != nil {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCreds).Put(k, sealed) })
}

// DeleteCredentials removes a brand's credentials for a provider, which
// puts it back in dry-run; removing none is not an error.
func (db *DB) DeleteCredentials(brandID string, p hotzone.Provider) error {
	lane := hotzone.Lane{BrandID: brandID, Provider: p}
	db.credMu.Lock()
	defer db.credMu.Unlock()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCreds).Delete(joinKey(brandID, string(p)))
	})
	if err != nil {
		return fmt.Errorf("store: delete credentials: %w", err)
	}
	delete(db.creds, lane)
	return nil
}

// Credentials returns a copy of a brand's credentials for a provider.
func (db *DB) Credentials(brandID string, p hotzone.Provider) (hotzone.PushCredentials, bool) {
	db.credMu.Lock()
	defer db.credMu.Unlock()
	c := db.creds[hotzone.Lane{BrandID: brandID, Provider: p}]
	if c == nil {
		return hotzone.PushCredentials{}, false
	}
	return *c, true
}

// MarkCredentials records the provider's verdict on credentials of the
// given version: broken with its answer, or ok again. A verdict on an
// older version is ignored.
func (db *DB) MarkCredentials(brandID string, p hotzone.Provider, version int64, broken bool, reason string) error {
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
