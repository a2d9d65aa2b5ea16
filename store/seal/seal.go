// Package seal encrypts records at rest (push credentials, and anything
// else a backend must not keep in the clear) with AES-256-GCM under the
// server's key. Every backend uses it, so a record sealed by one reads
// the same way in the other. It imports only the standard library.
//
// # Caveats
//
//   - There is one key and no rotation: records sealed under a key open
//     only with that key (HOTZONE_SECRET_KEY, or secret.key in the data
//     directory). Losing it loses the credentials, which then have to be
//     uploaded again.
//   - Each record gets a random 96-bit nonce; far fewer records than the
//     2³² that makes a repeat likely are ever sealed under one key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoKey: a record was sealed or opened without a server key.
var ErrNoKey = errors.New("seal: no secret key to encrypt push credentials")

// KeySize is the length of the server key.
const KeySize = 32

// Box seals and opens records under one key. The zero Box, or one made
// without a key, answers ErrNoKey to everything.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a 32-byte key; an empty key gives a Box that
// refuses to seal or open, so a server without a key still starts and
// runs every brand in dry-run.
func New(key []byte) (*Box, error) {
	if len(key) == 0 {
		return &Box{}, nil
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: the key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts v's JSON. ad (the record's key, say) is bound to it as
// additional data, so a sealed record copied under another key does not
// open.
func (b *Box) Seal(ad []byte, v any) ([]byte, error) {
	if b == nil || b.aead == nil {
		return nil, ErrNoKey
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plain, ad), nil
}

// Open decrypts a sealed record into v.
func (b *Box) Open(ad, sealed []byte, v any) error {
	if b == nil || b.aead == nil {
		return ErrNoKey
	}
	if len(sealed) < b.aead.NonceSize() {
		return errors.New("seal: sealed record too short")
	}
	plain, err := b.aead.Open(nil, sealed[:b.aead.NonceSize()], sealed[b.aead.NonceSize():], ad)
	if err != nil {
		return fmt.Errorf("seal: decrypt (wrong HOTZONE_SECRET_KEY?): %w", err)
	}
	return json.Unmarshal(plain, v)
}
