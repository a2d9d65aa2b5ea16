package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// secretFile holds the generated server key when HOTZONE_SECRET_KEY is
// not set. It lives beside the database only as a fallback: an operator
// who keeps backups of the data dir should set the variable instead, so
// that a stolen backup does not carry its own key.
const secretFile = "secret.key"

// secretKey returns the 32-byte key that encrypts push credentials:
// HOTZONE_SECRET_KEY (base64 of 32 bytes) when set, else the key in the
// data dir, generated on first start.
func secretKey(fromEnv, dataDir string) ([]byte, error) {
	if fromEnv != "" {
		k, err := decodeKey(fromEnv)
		if err != nil {
			return nil, fmt.Errorf("HOTZONE_SECRET_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, secretFile)
	if buf, err := os.ReadFile(path); err == nil {
		k, err := decodeKey(string(buf))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	// O_EXCL: two processes starting at once must not both write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != 32 {
		return nil, errors.New("must be 32 random bytes in base64 (openssl rand -base64 32)")
	}
	return k, nil
}
