package bolt

import (
	"crypto/sha256"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/storetest"
)

// TestConformance runs the storage contract's suite against bbolt.
func TestConformance(t *testing.T) {
	var dirs sync.Map // *testing.T -> its data dir, so a reopen finds it
	storetest.Run(t, func(t *testing.T, now func() time.Time) hotzone.Storage {
		t.Helper()
		dir, ok := dirs.Load(t)
		if !ok {
			dir = t.TempDir()
			dirs.Store(t, dir)
		}
		// A server key of the test's own, the same at every reopen.
		key := sha256.Sum256([]byte(t.Name()))
		db, err := Open(dir.(string), Options{Now: now, SecretKey: key[:]})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s := &checkedDB{DB: db, t: t, dir: dir.(string)}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// checkedDB closes once, whoever asks first (the suite restarting, or
// the test's cleanup), and then checks the file's consistency, as
// bbolt's own tests do. It flushes nothing itself: that Close writes
// what is held behind is one of the rules.
type checkedDB struct {
	*DB
	t    *testing.T
	dir  string
	once sync.Once
	err  error
}

func (c *checkedDB) Close() error {
	c.once.Do(func() {
		if c.err = c.DB.Close(); c.err != nil {
			return
		}
		b, err := bbolt.Open(filepath.Join(c.dir, FileName), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			c.t.Errorf("reopen to check: %v", err)
			return
		}
		defer b.Close()
		err = b.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil {
			c.t.Errorf("consistency check: %v", err)
		}
	})
	return c.err
}
